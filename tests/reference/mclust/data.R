# Shared by the reference scripts: the libraries, where the JSON goes, the
# three data sets (Old Faithful, iris[, 1:4], mclust's diabetes[, 2:4]), the
# JSON form of an array, and me() from a partition with its failures recorded.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

# The first command-line argument, else `name` next to the calling script.
output_path <- function(name, here) {
  args <- commandArgs(trailingOnly = TRUE)
  if (length(args) >= 1) args[1] else file.path(here, name)
}

mclust_datasets <- function() {
  data(diabetes, package = "mclust", envir = environment())
  list(
    faithful = as.matrix(datasets::faithful),
    iris = as.matrix(datasets::iris[, 1:4]),
    diabetes = as.matrix(diabetes[, 2:4])
  )
}

# A numeric array as {"dim": dim, "data": values in R's column-major order}.
array_json <- function(x) {
  d <- dim(x)
  if (is.null(d)) d <- length(x)
  list(dim = as.integer(d), data = as.vector(x))
}

# me() of `model` started from the indicator matrix z (extra arguments, such
# as a prior, are passed on). A fit mclust refuses, or one that ends with a
# non-zero returnCode or no finite log-likelihood, becomes
# list(model, ok = FALSE, reason); a good one the fields every reference file
# records (log-likelihood, BIC, EM iterations, weights, means, covariances).
me_json <- function(X, model, z, control, ...) {
  fit <- tryCatch(
    me(data = X, modelName = model, z = z, control = control, warn = FALSE, ...),
    error = function(e) e
  )
  if (inherits(fit, "error")) {
    return(list(model = model, ok = FALSE, reason = conditionMessage(fit)))
  }
  code <- attr(fit, "returnCode")
  if (is.null(fit$loglik) || !is.finite(fit$loglik) || (!is.null(code) && code != 0)) {
    return(list(model = model, ok = FALSE,
                reason = paste0("me() returnCode ", code, ": ", attr(fit, "WARNING"))))
  }
  params <- fit$parameters
  list(
    model = model,
    ok = TRUE,
    loglik = fit$loglik,
    bic = bic(model, fit$loglik, nrow(X), ncol(X), ncol(z)),
    iterations = attr(fit, "info")[[1]],
    pro = array_json(params$pro),
    mean = array_json(params$mean),
    sigma = array_json(params$variance$sigma),
    fit = fit
  )
}

# The header of a reference file: versions and the EM tolerances used.
reference_header <- function(control) {
  list(
    mclust_version = as.character(packageVersion("mclust")),
    r_version = R.version.string,
    control = list(tol = control$tol, itmax = control$itmax),
    datasets = list()
  )
}

# For each G in Gs, mclust's starting partition hclass(tree, G) and
# fit_json(X, model, z) of every model started from its indicator matrix z.
partition_cells <- function(X, tree, Gs, models, fit_json) {
  lapply(Gs, function(G) {
    cl <- as.vector(hclass(tree, G))
    z <- unmap(cl)
    list(G = G, classification = cl, fits = lapply(models, function(model) fit_json(X, model, z)))
  })
}
