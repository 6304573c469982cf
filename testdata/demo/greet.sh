#!/bin/sh
echo "${GREETING:-hello}, $(id -un) in $(pwd)"
