# Synthetic records for bench/suite.sh: `dim` features driven by `factors`
# hidden normal factors (x = W z + noise, W fixed by `wseed`), so a VAE has
# structure to learn and a normal record scores like the baseline. A share
# `anomalies` of the rows gets every 13th feature (two or three of 38) moved
# by +-6, several times a feature's spread; the `label` column says which
# rows (anomalyctl and the loadgen skip it). Rows differ by `seed`; W does not, so a baseline and a test file
# from different seeds share one distribution.
# Usage: awk -v n=ROWS [-v dim=38] [-v factors=8] [-v seed=S] [-v wseed=W]
#            [-v anomalies=0.01] -f bench/synthetic.awk
function gauss() { return sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand()) }
BEGIN {
  if (dim == "") dim = 38
  if (factors == "") factors = 8
  if (wseed == "") wseed = 7
  if (anomalies == "") anomalies = 0
  srand(wseed)
  for (j = 0; j < dim; j++) {
    for (k = 0; k < factors; k++) w[j, k] = gauss() / sqrt(factors)
    offset[j] = 10 * rand()
  }
  srand(seed)
  header = "label"
  for (j = 0; j < dim; j++) header = header ",f" j
  print header
  for (i = 0; i < n; i++) {
    for (k = 0; k < factors; k++) z[k] = gauss()
    bad = rand() < anomalies
    line = bad ? "1" : "0"
    for (j = 0; j < dim; j++) {
      x = offset[j] + 0.1 * gauss()
      for (k = 0; k < factors; k++) x += w[j, k] * z[k]
      if (bad && j % 13 == i % 13) x += (rand() < 0.5 ? -6 : 6)
      line = line sprintf(",%.5f", x)
    }
    print line
  }
}
