"""What Spark makes of a path: the characters it reads as a glob pattern.

Spark (Hadoop's ``globStatus``) expands these in a read path, on S3 as on a local disk.
Measured: a data dir holding ``[y]`` made the clean job look for a folder without it, and
one holding ``\\x`` failed it with "Illegal file pattern"; ``* ? { }`` are the same glob's.
The settings refuse them in zone paths, and the local stack in its data dir.
"""

from __future__ import annotations

SPARK_GLOB_CHARACTERS = "*?[]{}\\"
