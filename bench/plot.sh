#!/usr/bin/env bash
# plot.sh FORQ [OUT.png] — forq bench throughput against consumers and batch
# size, as a PNG (gnuplot; `apt-get install gnuplot-nox`). Each point is the
# median of 3 runs of `forq bench --handler noop --payload-bytes 8`.
set -eu
forq=${1:?usage: bench/plot.sh path/to/forq [out.png]}
out=${2:-bench/throughput.png}
tmp=$(mktemp -d /tmp/forq-plot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for w in 1 2; do
	for b in 1 4 16 64 256; do
		n=$((b >= 16 ? 20000000 : 4000000))
		for _ in 1 2 3; do
			"$forq" bench --tasks "$n" --workers "$w" --batch "$b" --payload-bytes 8 \
				--handler noop --json --quiet 2>/dev/null |
				sed -n 's/.*"tasks_per_s":\([0-9.]*\).*/\1/p'
		done | median | awk -v b="$b" '{printf "%d %.3f\n", b, $1 / 1e6}' >>"$tmp/w$w.dat"
	done
	echo "consumers=$w: $(tr '\n' ' ' <"$tmp/w$w.dat")" >&2
done
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
gnuplot <<GP
set terminal pngcairo size 900,540 font "sans,11"
set output "$out"
set title "forq bench: noop handler, 8-byte tasks ($(nproc) CPUs: $cpu)"
set xlabel "batch size (tasks per push and per pop)"
set ylabel "million tasks per second"
set logscale x 2
set key top left
set grid
plot "$tmp/w1.dat" with linespoints lw 2 pt 7 title "1 consumer", \
     "$tmp/w2.dat" with linespoints lw 2 pt 5 title "2 consumers"
GP
echo "wrote $out" >&2
