"""ArrowCsvExampleGen: CsvExampleGen's examples, parsed by Arrow and encoded in C++, shuffled in bounded memory.

csv_examples.py  CSV files to serialized tf.Examples (Arrow + tfx-bsl's C++ coder); Beam, no TFX
shuffle.py       each split shuffled through hash buckets into gzip shards; Beam, no TFX
executor.py      TFX's ExampleGen executor steps around the two
component.py     the TFX component (CsvExampleGen's interface)
"""
