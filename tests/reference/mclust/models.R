# Reference fits of mclust's covariance models for tests/test_covariance_mclust.py.
#
# Run from the repository root:
#   Rscript tests/reference/mclust/models.R [out.json [datasets [max_G]]]
# (default out: models.json next to this script; datasets a comma-separated
# subset of faithful,iris,diabetes,waiting, max_G at most 9: the live test runs
# a small subset). Needs R >= 4, mclust >= 6
# and jsonlite. Written for gmm; it calls mclust's public functions only.
#
# For each data set and G = 1..9 it records mclust's own starting partition,
# hclass(hc(X, modelName = "VVV", use = "SVD"), G) (for the one-feature
# 'waiting' data, Old Faithful's partition: its many ties make a one-feature
# tree put tied rows in singleton classes, where model V collapses), and for every model runs me() from that partition's indicator matrix
# with tight tolerances (outer EM and inner M-step iterations both 1e-10,
# unlimited iterations). Every numeric array is written as
# {"dim": dim, "data": values in R's column-major order}.

here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(), value = TRUE)[1])))
source(file.path(here, "data.R"))  # libraries, output_path(), mclust_datasets(), me_json()
args <- commandArgs(trailingOnly = TRUE)
out_path <- output_path("models.json", here)
max_G <- if (length(args) >= 3) as.integer(args[[3]]) else 9L
datasets <- mclust_datasets()
datasets$waiting <- as.matrix(datasets::faithful[, "waiting", drop = FALSE])
selected <- if (length(args) >= 2) strsplit(args[[2]], ",")[[1]] else names(datasets)
multivariate <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE",
                  "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
univariate <- c("E", "V")
control <- emControl(tol = c(1e-10, 1e-10))

variance_json <- function(variance) {
  out <- list()
  for (name in names(variance)) {
    value <- variance[[name]]
    if (is.numeric(value)) out[[name]] <- array_json(value)
    else if (is.character(value)) out[[name]] <- value
  }
  out
}

fit_json <- function(X, model, z) {
  out <- me_json(X, model, z, control)
  if (!out$ok) return(out)
  fit <- out$fit
  out$fit <- NULL
  out$n_params <- nMclustParams(model, ncol(X), ncol(z))
  out$variance <- variance_json(fit$parameters$variance)
  out
}

result <- reference_header(control)
for (data_name in selected) {
  X <- datasets[[data_name]]
  d <- ncol(X)
  tree <- hc(if (d == 1) datasets$faithful else X, modelName = "VVV", use = "SVD")
  models <- if (d == 1) univariate else multivariate
  cells <- partition_cells(X, tree, seq_len(max_G), models, fit_json)
  result$datasets[[data_name]] <- list(X = array_json(X), cells = cells)
}
writeLines(toJSON(result, auto_unbox = TRUE, digits = NA, null = "null"), out_path)
