"""Serving the pushed models: a TF Serving-compatible gRPC and REST server, clients, real-TF-Serving configs.

Depends only on the TF Serving directory layout (<base_path>/<integer version>/saved_model.pb) and
TensorFlow, never on the pipeline code. By role: `__main__`/`server` (the command and the server
object), `versions`/`servable` (model lifecycle), `inference`/`batching` (the model calls both
APIs share), `grpc_api`/`tensor_proto` (gRPC), `app`/`connections`/`json_parse`/`json_tensor`/
`json_writer` (REST), `metrics`, `errors`, `config`, `request_log`, `client`/`grpc_client`,
`rollback`/`tf_serving` (operator commands).
"""
