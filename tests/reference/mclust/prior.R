# Reference MAP fits of mclust's models under its conjugate prior, for tests/test_prior.py.
#
# Run: Rscript tests/reference/mclust/prior.R [out.json [datasets [Gs]]]
# (default out: prior.json next to this script; datasets a comma-separated
# subset of faithful,iris,diabetes,waiting; Gs a comma-separated subset of 1..9,
# default 1,2,3,5,9: the live test runs a small subset). Needs R >= 4,
# mclust >= 6 and jsonlite (data.R loads them and the data). Written for gmm; it
# calls mclust's public functions only.
#
# The data and starting partitions are those of models.R:
# hclass(hc(X, modelName = "VVV", use = "SVD"), G) (Old Faithful's for the
# one-feature 'waiting' data). For every model that mclust fits with a prior it
# runs me(..., prior = priorControl()) from the partition's indicator matrix
# with tight tolerances (emControl(tol = c(1e-10, 1e-10))) and records the
# log-likelihood, BIC (bic() of that log-likelihood), the parameters and the
# prior's values (defaultPrior(X, G, model)). Models mclust refuses with a
# prior are listed under "without_prior" with mclust's warning. Every numeric
# array is written as {"dim": dim, "data": values in R's column-major order}.

here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(), value = TRUE)[1])))
source(file.path(here, "data.R"))  # libraries, output_path(), mclust_datasets()
args <- commandArgs(trailingOnly = TRUE)
out_path <- output_path("prior.json", here)
Gs <- if (length(args) >= 3) as.integer(strsplit(args[[3]], ",")[[1]]) else c(1L, 2L, 3L, 5L, 9L)
datasets <- mclust_datasets()
datasets$waiting <- as.matrix(datasets::faithful[, "waiting", drop = FALSE])
selected <- if (length(args) >= 2) strsplit(args[[2]], ",")[[1]] else names(datasets)
with_prior <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
without_prior <- c("VEE", "EVE", "VVE", "EVV")
univariate <- c("E", "V")
control <- emControl(tol = c(1e-10, 1e-10))

array_json <- function(x) {
  d <- dim(x)
  if (is.null(d)) d <- length(x)
  list(dim = as.integer(d), data = as.vector(x))
}

prior_json <- function(X, G, model) {
  p <- defaultPrior(X, G, model)
  list(shrinkage = p$shrinkage, mean = array_json(p$mean), dof = p$dof,
       scale = array_json(p$scale))
}

fit_json <- function(X, model, z) {
  n <- nrow(X)
  d <- ncol(X)
  G <- ncol(z)
  fit <- tryCatch(
    me(data = X, modelName = model, z = z, prior = priorControl(),
       control = control, warn = FALSE),
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
    bic = bic(model, fit$loglik, n, d, G),
    iterations = attr(fit, "info")[[1]],
    prior = prior_json(X, G, model),
    pro = array_json(params$pro),
    mean = array_json(params$mean),
    sigma = array_json(params$variance$sigma)
  )
}

refused_json <- function(X, model, z) {
  fit <- suppressWarnings(me(data = X, modelName = model, z = z, prior = priorControl(),
                             control = control, warn = FALSE))
  list(model = model, warning = as.character(attr(fit, "WARNING")))
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
  models <- if (d == 1) univariate else with_prior
  cells <- list()
  for (G in Gs) {
    cl <- as.vector(hclass(tree, G))
    z <- unmap(cl)
    fits <- lapply(models, function(model) fit_json(X, model, z))
    cells[[length(cells) + 1]] <- list(G = G, classification = cl, fits = fits)
  }
  entry <- list(cells = cells)
  if (d > 1) {
    z <- unmap(as.vector(hclass(tree, 2)))
    entry$without_prior <- lapply(without_prior, function(model) refused_json(X, model, z))
  }
  result$datasets[[data_name]] <- entry
}
writeLines(toJSON(result, auto_unbox = TRUE, digits = NA, null = "null"), out_path)
