# Reference fits of mclust's covariance models for tests/test_covariance_mclust.py.
#
# Run from the repository root:
#   Rscript tests/reference/mclust/models.R [out.json [datasets [max_G]]]
# (default out: tests/reference/mclust/models.json; datasets a comma-separated
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

suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out_path <- if (length(args) >= 1) args[[1]] else "tests/reference/mclust/models.json"
max_G <- if (length(args) >= 3) as.integer(args[[3]]) else 9L

data(diabetes, package = "mclust")
datasets <- list(
  faithful = as.matrix(faithful),
  iris = as.matrix(iris[, 1:4]),
  diabetes = as.matrix(diabetes[, 2:4]),
  waiting = as.matrix(faithful[, "waiting", drop = FALSE])
)
selected <- if (length(args) >= 2) strsplit(args[[2]], ",")[[1]] else names(datasets)
multivariate <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE",
                  "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
univariate <- c("E", "V")
control <- emControl(tol = c(1e-10, 1e-10))

array_json <- function(x) {
  d <- dim(x)
  if (is.null(d)) d <- length(x)
  list(dim = as.integer(d), data = as.vector(x))
}

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
  n <- nrow(X)
  d <- ncol(X)
  G <- ncol(z)
  fit <- tryCatch(
    me(data = X, modelName = model, z = z, control = control, warn = FALSE),
    error = function(e) e
  )
  if (inherits(fit, "error")) {
    return(list(model = model, ok = FALSE, reason = conditionMessage(fit)))
  }
  code <- attr(fit, "returnCode")
  info <- attr(fit, "info")
  if (is.null(fit$loglik) || !is.finite(fit$loglik) || (!is.null(code) && code != 0)) {
    return(list(model = model, ok = FALSE,
                reason = paste0("me() returnCode ", code, ": ", attr(fit, "WARNING"))))
  }
  params <- fit$parameters
  list(
    model = model,
    ok = TRUE,
    loglik = fit$loglik,
    n_params = nMclustParams(model, d, G),
    bic = bic(model, fit$loglik, n, d, G),
    iterations = info[[1]],
    pro = array_json(params$pro),
    mean = array_json(params$mean),
    sigma = array_json(params$variance$sigma),
    variance = variance_json(params$variance)
  )
}

result <- list(
  mclust_version = as.character(packageVersion("mclust")),
  r_version = R.version.string,
  control = list(tol = control$tol, itmax = control$itmax),
  datasets = list()
)
for (data_name in selected) {
  X <- datasets[[data_name]]
  d <- ncol(X)
  tree <- hc(if (d == 1) datasets$faithful else X, modelName = "VVV", use = "SVD")
  models <- if (d == 1) univariate else multivariate
  cells <- list()
  for (G in seq_len(max_G)) {
    cl <- as.vector(hclass(tree, G))
    z <- unmap(cl)
    fits <- lapply(models, function(model) fit_json(X, model, z))
    cells[[G]] <- list(G = G, classification = cl, fits = fits)
  }
  result$datasets[[data_name]] <- list(X = array_json(X), cells = cells)
}
writeLines(toJSON(result, auto_unbox = TRUE, digits = NA, null = "null"), out_path)
