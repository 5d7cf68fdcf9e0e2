# Reference numbers of mclust's workflow: mclustBIC tables, the chosen model,
# its summary, ICL and uncertainty, on Old Faithful, iris[, 1:4] and mclust's
# diabetes[, 2:4].
#
# Writes workflow.json next to this script (or to the first argument):
# for each data set, mclustBIC(X, G = 1:9) with mclust's default EM control and
# with a tight one (emControl(tol = c(1e-10, sqrt(.Machine$double.eps)))), the
# return codes, nMclustParams for every cell, and for the best model of the
# default table: Mclust's log-likelihood, n, df, BIC, ICL (icl()), the
# classification, the uncertainty and the parameters.
# Run: Rscript tests/reference/mclust/workflow.R [out.json]
here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(), value = TRUE)[1])))
source(file.path(here, "data.R"))
out <- output_path("workflow.json", here)
datasets <- mclust_datasets()
tight <- emControl(tol = c(1e-10, sqrt(.Machine$double.eps)))

table_of <- function(bic) {
  values <- unclass(bic)
  codes <- attr(bic, "returnCodes")
  list(
    G = as.integer(rownames(values)),
    models = colnames(values),
    # mclust's sign: BIC = 2 logL - df log n, higher is better; NA when not fitted.
    bic = lapply(seq_len(nrow(values)), function(i) as.numeric(values[i, ])),
    return_codes = lapply(seq_len(nrow(codes)), function(i) as.integer(codes[i, ]))
  )
}

result <- list(mclust_version = as.character(packageVersion("mclust")),
               R_version = R.version.string, datasets = list())
for (name in names(datasets)) {
  X <- datasets[[name]]
  dimnames(X) <- NULL
  n <- nrow(X); d <- ncol(X)
  default <- mclustBIC(X, G = 1:9)
  strict <- mclustBIC(X, G = 1:9, control = tight)
  models <- colnames(unclass(default))
  df <- lapply(1:9, function(G) sapply(models, function(m) nMclustParams(m, d, G)))
  best <- Mclust(X, x = default)
  tight_best <- Mclust(X, x = strict)
  describe <- function(fit) list(
    model = fit$modelName, G = fit$G, loglik = fit$loglik, n = fit$n, df = fit$df,
    bic = fit$bic, icl = icl(fit),
    classification = as.integer(fit$classification),
    uncertainty = as.numeric(fit$uncertainty),
    pro = as.numeric(fit$parameters$pro),
    mean = lapply(seq_len(ncol(fit$parameters$mean)), function(k) as.numeric(fit$parameters$mean[, k]))
  )
  result$datasets[[name]] <- list(
    X = X,
    default = table_of(default),
    tight = table_of(strict),
    df = lapply(df, as.integer),
    best = describe(best),
    tight_best = describe(tight_best)
  )
}
writeLines(toJSON(result, digits = NA, auto_unbox = TRUE, na = "null"), out)
cat("wrote", out, "\n")
