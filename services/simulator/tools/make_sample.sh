#!/bin/sh
# Regenerates the simulator's sample call: data/sample-call.wav and data/sample-call.txt.
#
# Needs espeak-ng and sox (Debian/Ubuntu: apt-get install -y espeak-ng sox), plus awk.
# Two synthetic voices act a short contact-centre exchange; each turn is rendered at 8 kHz
# 16-bit mono and placed on its own channel of a stereo WAV (left = inbound = the caller,
# right = outbound = the agent), with silence on the other channel while it speaks. The
# script gets each turn's start and end time in seconds since the answer, so that the call
# player sends each final transcription when the turn ends in the audio.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
out="${1:-$here/../src/telnyx_simulator/data}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

RATE=8000
GAP=0.25      # silence between turns
LEAD=0.30     # silence before the first turn (the agent picks up and breathes)
TAIL=0.30     # silence after the last turn
CALLER_VOICE="en-us+m3"
AGENT_VOICE="en-gb+f4"

# track|text, in order.
cat > "$work/turns" <<'TURNS'
outbound|Acme support, Maria speaking.
inbound|Hi, my order hasn't arrived yet.
outbound|Sorry about that. What's the order number?
inbound|It's four seven two nine.
TURNS

silence() { sox -D -n -r "$RATE" -b 16 -c 1 -e signed-integer "$1" trim 0 "$2"; }

silence "$work/in-0.wav" "$LEAD"
cp "$work/in-0.wav" "$work/out-0.wav"
pieces_in="$work/in-0.wav"
pieces_out="$work/out-0.wav"
clock="$LEAD"
script="$work/script.txt"
{
    echo "# The sample call of telnyx_simulator (tools/make_sample.sh regenerates it)."
    echo "# [start-end] seconds since the answer; inbound = the caller (left channel),"
    echo "# outbound = the agent (right channel)."
} > "$script"

n=0
while IFS='|' read -r track text; do
    n=$((n + 1))
    if [ "$track" = inbound ]; then voice=$CALLER_VOICE; else voice=$AGENT_VOICE; fi
    espeak-ng -v "$voice" -s 175 -w "$work/raw-$n.wav" "$text"
    # 8 kHz mono 16-bit, leading/trailing silence trimmed, a little headroom.
    sox -D "$work/raw-$n.wav" -r "$RATE" -b 16 -c 1 -e signed-integer "$work/turn-$n.wav" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse gain -n -3
    length=$(soxi -D "$work/turn-$n.wav")
    silence "$work/quiet-$n.wav" "$length"
    silence "$work/gap-$n.wav" "$GAP"
    if [ "$track" = inbound ]; then
        pieces_in="$pieces_in $work/turn-$n.wav $work/gap-$n.wav"
        pieces_out="$pieces_out $work/quiet-$n.wav $work/gap-$n.wav"
    else
        pieces_in="$pieces_in $work/quiet-$n.wav $work/gap-$n.wav"
        pieces_out="$pieces_out $work/turn-$n.wav $work/gap-$n.wav"
    fi
    end=$(awk -v a="$clock" -v b="$length" 'BEGIN { printf "%.2f", a + b }')
    printf '[%.2f-%s] %s: %s\n' "$clock" "$end" "$track" "$text" >> "$script"
    clock=$(awk -v a="$end" -v b="$GAP" 'BEGIN { printf "%.2f", a + b }')
done < "$work/turns"

silence "$work/tail.wav" "$TAIL"
# shellcheck disable=SC2086 # the piece lists are space-separated paths without spaces
sox -D $pieces_in "$work/tail.wav" "$work/left.wav"
# shellcheck disable=SC2086
sox -D $pieces_out "$work/tail.wav" "$work/right.wav"
mkdir -p "$out"
sox -D -M "$work/left.wav" "$work/right.wav" -r "$RATE" -b 16 -e signed-integer "$out/sample-call.wav"
cp "$script" "$out/sample-call.txt"
echo "wrote $out/sample-call.wav ($(soxi -D "$out/sample-call.wav") s) and $out/sample-call.txt"
