# Digits-like records for the README's latent-space example: 8x8 binary
# pictures (features p00..p77, row then column, 1 = ink) of hand-drawn-ish
# strokes of a few digit classes, each shifted by up to one pixel and with a
# share `noise` of pixels flipped. The id says the class: "7-123" is record
# 123, a seven. With -v label=1 a `label` column marks the class given by
# -v odd=K (default 4) as an anomaly (1); `classes` picks the classes drawn.
# Usage: awk -v n=ROWS -v seed=S [-v classes=017] [-v noise=0.03]
#            [-v label=1] [-v odd=4] -f scripts/digits.awk
function seg(r0, c0, r1, c1,   k, steps) {  # a stroke, endpoints included
  steps = (r1 - r0) ^ 2 > (c1 - c0) ^ 2 ? r1 - r0 : c1 - c0
  if (steps < 0) steps = -steps
  for (k = 0; k <= steps; k++) {
    ink[int(r0 + (r1 - r0) * k / (steps ? steps : 1) + 0.5), \
        int(c0 + (c1 - c0) * k / (steps ? steps : 1) + 0.5)] = 1
  }
}
function draw(d) {
  if (d == 0) { seg(1, 3, 1, 4); seg(6, 3, 6, 4); seg(2, 2, 5, 2); seg(2, 5, 5, 5) }
  if (d == 1) { seg(1, 4, 6, 4); seg(2, 3, 1, 4); seg(6, 3, 6, 5) }
  if (d == 2) { seg(1, 2, 1, 5); seg(2, 5, 3, 5); seg(4, 4, 5, 3); seg(6, 2, 6, 5) }
  if (d == 3) { seg(1, 2, 1, 5); seg(2, 5, 2, 5); seg(3, 3, 3, 5); seg(4, 5, 5, 5); seg(6, 2, 6, 5) }
  if (d == 4) { seg(1, 2, 4, 2); seg(4, 2, 4, 5); seg(1, 5, 6, 5) }
  if (d == 7) { seg(1, 2, 1, 5); seg(2, 5, 6, 3) }
}
BEGIN {
  srand(seed)
  if (classes == "") classes = "017"
  if (noise == "") noise = 0.03
  if (odd == "") odd = 4
  printf "id"
  for (r = 0; r < 8; r++) for (c = 0; c < 8; c++) printf ",p%d%d", r, c
  print label ? ",label" : ""
  for (i = 1; i <= n; i++) {
    d = substr(classes, 1 + int(rand() * length(classes)), 1) + 0
    delete ink
    draw(d)
    dr = int(rand() * 3) - 1; dc = int(rand() * 3) - 1
    printf "%d-%d", d, i
    for (r = 0; r < 8; r++) for (c = 0; c < 8; c++) {
      v = ((r - dr, c - dc) in ink) ? 1 : 0
      if (rand() < noise) v = 1 - v
      printf ",%d", v
    }
    if (label) printf ",%d", d == odd
    printf "\n"
  }
}
