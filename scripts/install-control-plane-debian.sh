#!/usr/bin/env bash
echo "debian fallback: not written yet" >&2; exit 1
