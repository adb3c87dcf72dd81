"""After the run: the job folder beside the output, and the stitch into it."""
