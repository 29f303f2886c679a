#!/bin/sh
# Start hook of a student's server: copy the student bundle into the home folder, then start the
# server given as arguments (JupyterHub passes jupyterhub-singleuser and its options).
#
#   RNN_COURSE_BUNDLE  the bundle folder written by `python -m course_utils.bundle` (default
#                      /srv/rnn-course/bundle, where hub/Dockerfile puts it)
#   RNN_COURSE_DIR     the folder in the home that receives it (default rnn-course)
#
# Only missing files are copied: a student's edited notebook is never overwritten, and notebooks
# added to the bundle later reach everyone at their next server start. Runs on every start, as the
# student (with the home folder mounted, in an image); never fails the start because of the copy.
set -u
bundle="${RNN_COURSE_BUNDLE:-/srv/rnn-course/bundle}"
target="${HOME:?HOME is not set}/${RNN_COURSE_DIR:-rnn-course}"
if [ -d "$bundle" ]; then
    (
        cd "$bundle" &&
        find . -type d -exec mkdir -p "$target/{}" \; &&
        find . -type f ! -exec test -e "$target/{}" \; -exec cp "{}" "$target/{}" \;
    ) || echo "start-course.sh: could not copy $bundle to $target; starting anyway" >&2
else
    echo "start-course.sh: no bundle at $bundle; starting without copying" >&2
fi
exec "$@"
