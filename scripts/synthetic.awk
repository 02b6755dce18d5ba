# Synthetic records for scripts/run.sh and the README's examples: four
# features with b = 2a and d = c - a (plus a little noise); the last `bad`
# rows break b = 2a. With -v label=1 a `label` column says which (1).
# Usage: awk -v n=ROWS -v seed=S -v bad=K [-v label=1] -f scripts/synthetic.awk
function gauss() { return sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand()) }
BEGIN {
  srand(seed)
  print "id,a,b,c,d" (label ? ",label" : "")
  for (i = 1; i <= n; i++) {
    a = gauss(); c = 10 + 3 * gauss()
    b = 2 * a + 0.1 * gauss(); d = c - a + 0.1 * gauss()
    if (i > n - bad) b += 12
    printf "r%d,%.5f,%.5f,%.5f,%.5f", i, a, b, c, d
    if (label) printf ",%d", (i > n - bad)
    printf "\n"
  }
}
