"""The API's request parser: DRF's JSON parser, with one more malformed case."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser. A body nested deeper than Python's JSON decoder follows
    raises RecursionError, which DRF does not count as malformed JSON: answered as
    any other parse error (400), not as a server error."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(
                "JSON parse error - the document nests too deeply."
            ) from None
