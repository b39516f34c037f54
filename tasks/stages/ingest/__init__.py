"""Ingest: find the input files and turn each input record into a RawDocument or a
Rejection, and write them as bounded staging shards. `listing` finds the files,
`decoding` reads text safely, `readers` holds one reader per format, `fields` maps
record fields, and `stage` reads a group of files into shards (`ingest_files`).

Two promises shape this package:
- it never raises for bad input: every file and record ends up as exactly one
  document or one rejection (kept + rejected = read), so a run can account for all;
- it is lazy: records come out of generators and tabular files are streamed, so
  memory stays flat whatever the file size.
"""

from tasks.stages.ingest.common import STAGE
from tasks.stages.ingest.fields import normalise_date, split_authors
from tasks.stages.ingest.listing import list_inputs, without_excluded
from tasks.stages.ingest.readers import read_records, split_headline, strip_markdown
from tasks.stages.ingest.stage import GROUP_STRIDE, ingest_files

__all__ = [
    "GROUP_STRIDE",
    "STAGE",
    "ingest_files",
    "list_inputs",
    "normalise_date",
    "read_records",
    "split_authors",
    "split_headline",
    "strip_markdown",
    "without_excluded",
]
