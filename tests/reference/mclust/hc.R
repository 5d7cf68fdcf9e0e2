# Reference partitions of mclust's model-based hierarchical clustering (hc).
#
# Writes hc.json next to this script (or to the path given as the first
# argument): the three data sets (Old Faithful, iris[, 1:4], mclust's
# diabetes[, 2:4]; and a seeded synthetic 400 x 5 for four runs) and hclass(hc(X, modelName = m, use = u), 1:9) for model
# VVV with every `use`, and models EII, VII, EEE with use VARS and SVD; the
# same for VVV/SVD started from dupPartition(X) (duplicate rows grouped: note
# that hc() called without `partition` starts from single rows in mclust 6.0);
# and qclass(x, k), k = 1..9, for each column (mclust's start on one feature).
# Run: Rscript tests/reference/mclust/hc.R [out.json]
here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(), value = TRUE)[1])))
source(file.path(here, "data.R"))
out <- output_path("hc.json", here)
datasets <- mclust_datasets()
runs <- c(paste0("VVV/", c("VARS", "STD", "SPH", "PCS", "PCR", "SVD")),
          paste0(rep(c("EII", "VII", "EEE"), each = 2), "/", c("VARS", "SVD")))
# A larger synthetic set (400 x 5: four seeded Gaussians with a shared random
# shape), for the models whose trees are quick to build there.
set.seed(1)
centres <- matrix(rnorm(4 * 5, sd = 3), 4)
datasets$synthetic <- centres[rep(1:4, each = 100), ] +
  matrix(rnorm(400 * 5), 400) %*% matrix(rnorm(25, sd = 0.5), 5)
runs_for <- function(name) {
  if (name == "synthetic") c("VVV/SVD", "VVV/VARS", "VII/SVD", "EII/SVD") else runs
}

result <- list(
  mclust_version = as.character(packageVersion("mclust")),
  R_version = R.version.string,
  G = 1:9,
  datasets = list()
)
for (name in names(datasets)) {
  X <- datasets[[name]]
  dimnames(X) <- NULL
  partitions <- list()
  for (run in runs_for(name)) {
    parts <- strsplit(run, "/")[[1]]
    tree <- hc(X, modelName = parts[1], use = parts[2])
    cl <- hclass(tree, 1:9)
    # One list of labels per G = 1..9.
    partitions[[run]] <- lapply(seq_len(ncol(cl)), function(k) as.integer(cl[, k]))
  }
  tree <- hc(X, modelName = "VVV", use = "SVD", partition = dupPartition(X))
  cl <- hclass(tree, 1:9)
  partitions[["VVV/SVD/dupPartition"]] <- lapply(seq_len(ncol(cl)), function(k) as.integer(cl[, k]))
  qclasses <- lapply(seq_len(ncol(X)), function(j)
    lapply(1:9, function(k) as.integer(mclust:::qclass(X[, j], k))))
  result$datasets[[name]] <- list(X = X, hc = partitions, qclass = qclasses)
}
writeLines(toJSON(result, digits = NA, auto_unbox = TRUE), out)
cat("wrote", out, "\n")
