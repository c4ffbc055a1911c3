#!/bin/sh
# Deletes every natlab network namespace (names like nl4fz-k7inet), live runs'
# included, killing the processes still inside first. Needs root.
set -eu
for ns in $(ip netns list | awk '{print $1}' | grep -E '^nl[0-9a-z]{1,5}-[0-9a-z]{2}[a-z0-9]{1,5}$' || true); do
	for pid in $(ip netns pids "$ns"); do
		kill -9 "$pid" 2>/dev/null || true
	done
	ip netns delete "$ns" && echo "deleted $ns"
done
