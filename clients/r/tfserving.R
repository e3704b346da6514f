# A small R client for TF Serving's REST API: model status, metadata and predict. It works against
# tensorflow_model_server and against our `python -m serving`, which answer the same JSON.
#
#   source("clients/r/tfserving.R")
#   client <- tfs_client("http://127.0.0.1:8501")
#   tfs_predict(client, "taxi", instances, signature_name = "serving_raw")
#
# Needs httr2 (written against 0.2.2, Debian bookworm's r-cran-httr2) and jsonlite. Functions whose
# names start with `.tfs_` are internal.

#' Points the other `tfs_*` functions at one TF Serving REST endpoint.
#'
#' @param url Base URL of the REST port, e.g. "http://127.0.0.1:8501".
#' @param timeout Seconds to wait for each answer.
#' @return A `tfs_client` object.
tfs_client <- function(url = "http://127.0.0.1:8501", timeout = 30) {
  if (!is.character(url) || length(url) != 1 || !grepl("^https?://[^/]+", url)) {
    stop("url must look like http://host:port, got ", deparse(url), call. = FALSE)
  }
  structure(list(url = sub("/+$", "", url), timeout = timeout), class = "tfs_client")
}

#' The state of a model's versions: GET /v1/models/{model}[/versions/{version}].
#'
#' TF Serving has no status by label: a label in the URL is ignored and every version is listed,
#' so this function takes a version only.
#'
#' @param client A `tfs_client`.
#' @param model Model name.
#' @param version A version number, or NULL for every version the server knows.
#' @return A data frame, one row per version: `version` (numeric), `state` (e.g. "AVAILABLE",
#'   "LOADING", "END"), `status.error_code` and `status.error_message`.
tfs_model_status <- function(client, model, version = NULL) {
  answer <- .tfs_call(client, .tfs_model_url(client, model, version, NULL))
  status <- jsonlite::flatten(answer$model_version_status)
  status$version <- as.numeric(status$version)  # an int64, which TF Serving writes as a string
  status
}

#' The signatures a model version serves: GET .../metadata.
#'
#' @inheritParams tfs_predict
#' @return A list: `model_spec` (name, version) and
#'   `metadata$signature_def$signature_def`, one entry per signature with its `inputs` and
#'   `outputs` (dtype and tensor_shape of each) and `method_name`.
tfs_metadata <- function(client, model, version = NULL, label = NULL) {
  .tfs_call(client, paste0(.tfs_model_url(client, model, version, label), "/metadata"))
}

#' Predicts on rows: POST ...:predict with `instances`, one entry per example.
#'
#' Missing numbers: NA and NaN in a double vector are sent as JSON `NaN`, Inf as `Infinity`
#' (TF Serving's parser accepts both). Integers, strings and booleans have no missing value in
#' TF Serving, so NA there is an error here: send the model's own placeholder instead (the taxi
#' model's `serving_raw` takes -1 and "").
#'
#' @param client A `tfs_client`.
#' @param model Model name.
#' @param instances A data frame (one instance per row, one input per column), a list of named
#'   lists (one per instance), or, for a signature with one input, a vector or matrix (one value
#'   or row per instance). A length-1 vector inside an instance is sent as a scalar; wrap it in
#'   I() to send a one-element array.
#' @param signature_name Signature to call; NULL means "serving_default".
#' @param version,label Serve from this version number or this version label (not both);
#'   NULL for both means the server's default version.
#' @return The `predictions`, simplified by jsonlite: a vector or matrix for a signature with one
#'   output, a data frame with one column per output otherwise.
tfs_predict <- function(client, model, instances, signature_name = NULL, version = NULL,
                        label = NULL) {
  if (is.data.frame(instances)) {
    instances <- lapply(seq_len(nrow(instances)), function(row) {
      lapply(instances, function(column) column[[row]])
    })
  } else if (is.atomic(instances) && is.null(dim(instances))) {
    instances <- I(instances)  # a vector is a batch of scalars, even a batch of one
  }
  body <- .tfs_request_body(list(instances = instances), signature_name)
  url <- paste0(.tfs_model_url(client, model, version, label), ":predict")
  .tfs_call(client, url, body)$predictions
}

#' Predicts on columns: POST ...:predict with `inputs`, one batch per named input.
#'
#' @inheritParams tfs_predict
#' @param inputs A named list or data frame of batches (vectors, matrices), one per input; or,
#'   for a signature with one input, that batch alone. Vectors are always sent as arrays.
#' @return The `outputs`: the output tensor, or a named list of them when there are several.
tfs_predict_columns <- function(client, model, inputs, signature_name = NULL, version = NULL,
                                label = NULL) {
  if (is.list(inputs)) {
    inputs <- lapply(as.list(inputs), function(batch) if (is.atomic(batch)) I(batch) else batch)
  } else {
    inputs <- I(inputs)
  }
  body <- .tfs_request_body(list(inputs = inputs), signature_name)
  url <- paste0(.tfs_model_url(client, model, version, label), ":predict")
  .tfs_call(client, url, body)$outputs
}

#' The condition every failed call raises: class `tfserving_error` (then `error`, `condition`).
#'
#' Fields: `status`, the HTTP status (NA when the server could not be reached); `error`, TF
#' Serving's `error` text (or what went wrong on the way); `url`, the URL called.
.tfs_error <- function(status, error, url) {
  message <- paste0(url, ": ", if (is.na(status)) "no response" else status, ": ", error)
  structure(
    list(message = message, call = NULL, status = status, error = error, url = url),
    class = c("tfserving_error", "error", "condition")
  )
}

.tfs_model_url <- function(client, model, version, label) {
  if (!inherits(client, "tfs_client")) stop("client must come from tfs_client()", call. = FALSE)
  if (!is.null(version) && !is.null(label)) {
    stop("pass either version or label, not both", call. = FALSE)
  }
  url <- paste0(client$url, "/v1/models/", utils::URLencode(model, reserved = TRUE))
  if (!is.null(version)) {
    if (!is.numeric(version) || length(version) != 1 || is.na(version) || version < 0 ||
      version != round(version)) {
      stop("version must be one whole number, got ", deparse(version), call. = FALSE)
    }
    url <- paste0(url, "/versions/", sprintf("%.0f", version))
  } else if (!is.null(label)) {
    url <- paste0(url, "/labels/", utils::URLencode(label, reserved = TRUE))
  }
  url
}

.tfs_request_body <- function(payload, signature_name) {
  if (!is.null(signature_name)) payload$signature_name <- signature_name
  jsonlite::toJSON(.tfs_encode_leaves(payload), auto_unbox = TRUE, json_verbatim = TRUE)
}

# Replaces every atomic vector in `x` by its JSON text, written here rather than by jsonlite's
# defaults: jsonlite would write NaN as null or "NaN", both of which TF Serving rejects for a
# float tensor, and would keep only 4 decimal digits.
.tfs_encode_leaves <- function(x) {
  if (is.null(x)) return(x)
  if (is.list(x)) {
    x[] <- lapply(x, .tfs_encode_leaves)
    return(x)
  }
  array <- length(x) != 1 || inherits(x, "AsIs") || !is.null(dim(x))
  if (is.factor(x)) x <- as.character(x)
  # R's bare NA is logical, and so is a column read.csv() found empty: take it as a missing number.
  if (is.logical(x) && all(is.na(x))) x <- as.double(x)
  if (anyNA(x) && !is.double(x)) {
    stop("NA in a vector of type ", typeof(x), ": TF Serving has no missing integer, string or ",
         "boolean; send the model's placeholder for a missing value instead", call. = FALSE)
  }
  value <- if (array) unclass(x) else jsonlite::unbox(x)
  text <- jsonlite::toJSON(value, digits = NA, na = "string")
  if (is.double(x)) {
    # In an array of numbers the only strings are jsonlite's names for the non-finite values.
    text <- gsub('"(NaN|NA)"', "NaN", text)
    text <- gsub('"Inf"', "Infinity", text)
    text <- gsub('"-Inf"', "-Infinity", text)
  }
  structure(text, class = "json")
}

.tfs_call <- function(client, url, body = NULL) {
  request <- httr2::request(url)
  request <- httr2::req_timeout(request, client$timeout)
  request <- httr2::req_error(request, is_error = function(response) FALSE)
  if (!is.null(body)) request <- httr2::req_body_raw(request, body, type = "application/json")
  response <- tryCatch(httr2::req_perform(request), error = function(problem) {
    stop(.tfs_error(NA_integer_, paste("cannot reach the server:", conditionMessage(problem)), url))
  })
  status <- httr2::resp_status(response)
  # httr2 0.2.2 raises on an empty body, which a few of TF Serving's 400s have.
  bytes <- tryCatch(httr2::resp_body_raw(response), error = function(problem) raw())
  text <- rawToChar(bytes)
  Encoding(text) <- "UTF-8"
  if (status >= 400) stop(.tfs_error(status, .tfs_error_text(text, response), url))
  answer <- tryCatch(.tfs_parse(text), error = function(problem) NULL)
  if (is.null(answer)) {
    stop(.tfs_error(status, paste("the response is not JSON:", substr(text, 1, 200)), url))
  }
  answer
}

# TF Serving answers `{ "error": "..." }`, except for the empty 400s and the HTML page it
# answers for paths outside /v1/.
.tfs_error_text <- function(text, response) {
  parsed <- tryCatch(jsonlite::fromJSON(text), error = function(problem) NULL)
  if (is.list(parsed) && is.character(parsed$error)) return(parsed$error)
  if (nzchar(text)) substr(text, 1, 500) else httr2::resp_status_desc(response)
}

# TF Serving writes non-finite floats as bare NaN, Infinity and -Infinity, which jsonlite cannot
# parse. Quoted as "NaN", "Inf" and "-Inf" (strings stay as they are), jsonlite reads them back
# as numbers wherever the rest of the vector is numeric.
.tfs_parse <- function(text) {
  if (grepl("NaN|Infinity", text)) {
    tokens <- gregexpr('"[^"\\\\]*(?:\\\\.[^"\\\\]*)*"|-?Infinity|NaN', text, perl = TRUE)
    regmatches(text, tokens) <- lapply(regmatches(text, tokens), function(found) {
      replaced <- c("NaN" = '"NaN"', "Infinity" = '"Inf"', "-Infinity" = '"-Inf"')[found]
      ifelse(is.na(replaced), found, replaced)
    })
  }
  jsonlite::fromJSON(text, simplifyVector = TRUE)
}
