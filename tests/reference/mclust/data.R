# Shared by hc.R and workflow.R: the libraries, where the JSON goes, and the
# three data sets (Old Faithful, iris[, 1:4], mclust's diabetes[, 2:4]).
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
