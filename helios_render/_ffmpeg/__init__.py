"""FFmpeg: find it, build its arguments, feed it frames, mix the audio. Knows no browser."""
