"""Date formats for English pages: staff see times to the second (customer pages pass their own)."""

DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
