# Calls the taxi model from R: status, signatures, one prediction per format, and a refused request.
#
#   make serve                                   # in another terminal
#   Rscript clients/r/example.R [http://127.0.0.1:8501]

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(sub("^--file=", "", args[startsWith(args, "--file=")]))
source(file.path(here, "tfserving.R"))

url <- commandArgs(trailingOnly = TRUE)[1]
client <- tfs_client(if (is.na(url)) "http://127.0.0.1:8501" else url)

print(tfs_model_status(client, "taxi"))
signatures <- tfs_metadata(client, "taxi")$metadata$signature_def$signature_def
cat("serving_raw inputs:", names(signatures$serving_raw$inputs), "\n")

# The trip in docs/serving.md; a missing float is NA (sent as NaN), a missing integer -1, a
# missing string "".
trips <- data.frame(
  fare = c(12.5, 7.0), trip_miles = c(2.1, 0.8), trip_seconds = c(720L, 300L),
  pickup_latitude = c(41.88, 41.9), pickup_longitude = c(-87.63, -87.62),
  dropoff_latitude = c(NA, 41.89), dropoff_longitude = c(NA, -87.63),
  trip_start_hour = c(18L, 9L), trip_start_day = c(6L, 2L), trip_start_month = c(5L, 5L),
  pickup_community_area = c(8L, 8L), dropoff_community_area = c(-1L, 32L),
  payment_type = c("Credit Card", "Cash"), company = c("", "")
)
trips$tip_probability <- tfs_predict(client, "taxi", trips, signature_name = "serving_raw")
print(trips[, c("fare", "trip_miles", "payment_type", "tip_probability")], digits = 3)

columns <- tfs_predict_columns(client, "taxi", trips[, 1:14], signature_name = "serving_raw")
stopifnot(isTRUE(all.equal(columns, trips$tip_probability)))

mistyped <- trips[1, 1:14]
mistyped$fare <- "twelve"
refused <- tryCatch(
  tfs_predict(client, "taxi", mistyped, signature_name = "serving_raw"),
  tfserving_error = function(error) error
)
cat("refused with HTTP", refused$status, "-", refused$error, "\n")
