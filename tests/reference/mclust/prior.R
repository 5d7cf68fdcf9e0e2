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
source(file.path(here, "data.R"))  # libraries, output_path(), mclust_datasets(), me_json()
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

prior_json <- function(X, G, model) {
  p <- defaultPrior(X, G, model)
  list(shrinkage = p$shrinkage, mean = array_json(p$mean), dof = p$dof,
       scale = array_json(p$scale))
}

fit_json <- function(X, model, z) {
  out <- me_json(X, model, z, control, prior = priorControl())
  if (!out$ok) return(out)
  out$fit <- NULL
  out$prior <- prior_json(X, ncol(z), model)
  out
}

refused_json <- function(X, model, z) {
  fit <- suppressWarnings(me(data = X, modelName = model, z = z, prior = priorControl(),
                             control = control, warn = FALSE))
  list(model = model, warning = as.character(attr(fit, "WARNING")))
}

result <- reference_header(control)
for (data_name in selected) {
  X <- datasets[[data_name]]
  d <- ncol(X)
  tree <- hc(if (d == 1) datasets$faithful else X, modelName = "VVV", use = "SVD")
  models <- if (d == 1) univariate else with_prior
  cells <- partition_cells(X, tree, Gs, models, fit_json)
  entry <- list(cells = cells)
  if (d > 1) {
    z <- unmap(as.vector(hclass(tree, 2)))
    entry$without_prior <- lapply(without_prior, function(model) refused_json(X, model, z))
  }
  result$datasets[[data_name]] <- entry
}
writeLines(toJSON(result, auto_unbox = TRUE, digits = NA, null = "null"), out_path)
