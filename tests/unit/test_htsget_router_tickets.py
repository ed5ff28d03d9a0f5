"""htsget requests and Crypt4GH selections without a server: htsget's rules and error names, and edit lists
that make a reader decrypt exactly the planned plaintext ranges from the segments a ticket sends."""

from __future__ import annotations

import base64
import io
import os
import random

import crypt4gh.lib
import pytest
from crypt4gh import sodium
from crypt4gh.keys import get_public_key
from hypothesis import given, settings
from hypothesis import strategies as st

from genomebus.gateway import htsget_tickets as tickets
from genomebus.gateway.htsget_tickets import TicketRequest
from genomebus.infra.archive_store import CIPHER_SEGMENT_SIZE, SEGMENT_SIZE, ArchivedObject, BytesSource
from genomebus.infra.hts import HtsError, Region
from tests.data import DATA

ARCHIVE_SECRET = bytes(range(32))
READER_SECRET = bytes(range(100, 132))
READER_PUBLIC = sodium.derive_pk(READER_SECRET)


def refused(call, error: str) -> str:
    with pytest.raises(HtsError) as caught:
        call()
    assert caught.value.error == error, caught.value
    return caught.value.message


# -- GET -----------------------------------------------------------------------------------------------------------


def test_a_get_without_parameters_is_the_whole_file_in_the_objects_format():
    assert tickets.from_get("reads") == TicketRequest("reads")


def test_a_get_region_is_one_region_and_formats_are_taken_in_any_case():
    asked = tickets.from_get("variants", format="bcf", reference_name="chr1", start=10, end=20)
    assert asked == TicketRequest("variants", format="BCF", regions=(Region("chr1", 10, 20),))
    assert tickets.from_get("reads", reference_name="*").regions == (Region("*"),)
    assert tickets.from_get("reads", reference_name="chr1", start=5, end=5).regions == (Region("chr1", 5, 5),)


@pytest.mark.parametrize(("endpoint", "kwargs", "error", "says"), [
    ("reads", {"format": "VCF"}, "UnsupportedFormat", "BAM or CRAM"),
    ("variants", {"format": "BAM"}, "UnsupportedFormat", "VCF or BCF"),
    ("reads", {"format": "SAM"}, "UnsupportedFormat", "'SAM'"),
    ("reads", {"klass": "body"}, "InvalidInput", "class must be 'header'"),
    ("reads", {"klass": "HEADER"}, "InvalidInput", "class must be 'header'"),
    ("reads", {"klass": "header", "reference_name": "chr1"}, "InvalidInput", "referenceName"),
    ("reads", {"klass": "header", "fields": ["QNAME"]}, "InvalidInput", "fields"),
    ("variants", {"klass": "header", "tags": ["DP"]}, "InvalidInput", "tags"),
    ("reads", {"reference_name": "chr1", "start": 20, "end": 10}, "InvalidRange", "start 20 is greater than end 10"),
    ("reads", {"start": 10}, "InvalidInput", "need a referenceName"),
    ("reads", {"end": 10}, "InvalidInput", "need a referenceName"),
    ("reads", {"reference_name": "*", "start": 10}, "InvalidInput", "takes no start or end"),
    ("reads", {"reference_name": "*", "end": 10}, "InvalidInput", "takes no start or end"),
    ("variants", {"reference_name": "*"}, "InvalidInput", "reads endpoint only"),
    ("reads", {"reference_name": ""}, "InvalidInput", "must not be empty"),
    ("reads", {"fields": ["QNAME,NAME"]}, "InvalidInput", "unknown field 'NAME'"),
    ("reads", {"fields": ["qname"]}, "InvalidInput", "unknown field 'qname'"),
    ("reads", {"fields": ["QNAME,"]}, "InvalidInput", "unknown field ''"),
    ("reads", {"tags": ["NM,MD"], "notags": ["MD"]}, "InvalidInput", "both name MD"),
    ("variants", {"tags": ["DP"], "notags": ["AF", "DP"]}, "InvalidInput", "both name DP"),
    ("reads", {"tags": ["NM,,MD"]}, "InvalidInput", "empty tag name"),
    ("reads", {"encryption_scheme": "PGP"}, "UnsupportedFormat", "encryptionScheme"),
])
def test_a_get_that_htsget_refuses_is_refused_with_its_error_name(endpoint, kwargs, error, says):
    assert says in refused(lambda: tickets.from_get(endpoint, **kwargs), error)


def test_get_lists_may_be_repeated_or_comma_separated_and_an_empty_tags_is_no_tags():
    asked = tickets.from_get("reads", fields=["QNAME,FLAG", "POS"], tags=["NM", "MD,RG"], notags=["OQ"])
    assert (asked.fields, asked.tags, asked.notags) == (("QNAME", "FLAG", "POS"), ("NM", "MD", "RG"), ("OQ",))
    assert tickets.from_get("reads", tags=[""]).tags == ()
    assert tickets.from_get("reads", tags=[""], notags=[""]).notags == ()


def test_class_header_with_a_format_is_the_header():
    assert tickets.from_get("reads", format="CRAM", klass="header") == TicketRequest("reads", "CRAM", header_only=True)


def test_the_crypt4gh_scheme_is_taken_in_any_case():
    assert tickets.from_get("variants", encryption_scheme="c4gh").c4gh
    assert tickets.from_post("reads", {"encryptionScheme": "C4GH"}).c4gh


# -- POST ----------------------------------------------------------------------------------------------------------


def test_a_post_body_names_its_regions_in_order():
    asked = tickets.from_post("reads", {"format": "bam", "fields": ["QNAME", "FLAG"], "tags": ["RG"], "notags": ["OQ"],
                                        "regions": [{"referenceName": "chr1"},
                                                    {"referenceName": "chr2", "start": 999, "end": 1000},
                                                    {"referenceName": "*"}]})
    assert asked == TicketRequest("reads", "BAM", regions=(Region("chr1"), Region("chr2", 999, 1000), Region("*")),
                                  fields=("QNAME", "FLAG"), tags=("RG",), notags=("OQ",))
    assert tickets.from_post("variants", None) == TicketRequest("variants")
    assert tickets.from_post("variants", {"class": "header", "format": "VCF"}).header_only


def test_an_unknown_member_of_a_post_body_is_ignored_as_the_schema_allows():
    assert tickets.from_post("variants", {"fields": ["whatever"], "x": 1}) == TicketRequest("variants")


@pytest.mark.parametrize(("endpoint", "body", "error", "says"), [
    ("reads", [], "InvalidInput", "JSON object"),
    ("reads", "BAM", "InvalidInput", "JSON object"),
    ("reads", {"regions": []}, "InvalidInput", "region list is empty"),
    ("reads", {"regions": {"referenceName": "chr1"}}, "InvalidInput", "list of regions"),
    ("reads", {"regions": [{"start": 1}]}, "InvalidInput", "needs a referenceName"),
    ("reads", {"regions": ["chr1"]}, "InvalidInput", "an object"),
    ("reads", {"regions": [{"referenceName": 1}]}, "InvalidInput", "referenceName must be a string"),
    ("reads", {"regions": [{"referenceName": None}]}, "InvalidInput", "referenceName must be a string"),
    ("reads", {"regions": [{"referenceName": "chr1", "start": "5"}]}, "InvalidInput", "start must be an integer"),
    ("reads", {"regions": [{"referenceName": "chr1", "start": True}]}, "InvalidInput", "start must be an integer"),
    ("reads", {"regions": [{"referenceName": "chr1", "end": None}]}, "InvalidInput", "end must be an integer"),
    ("reads", {"regions": [{"referenceName": "chr1", "start": -1}]}, "InvalidInput", "between 0 and"),
    ("reads", {"regions": [{"referenceName": "chr1", "end": 2**63}]}, "InvalidInput", "between 0 and"),
    ("reads", {"regions": [{"referenceName": "chr1", "start": 5, "end": 5}]}, "InvalidRange", "equal to end"),
    ("reads", {"regions": [{"referenceName": "chr1", "start": 6, "end": 5}]}, "InvalidRange", "greater than end"),
    ("reads", {"regions": [{"referenceName": "*", "start": 6}]}, "InvalidInput", "takes no start or end"),
    ("variants", {"regions": [{"referenceName": "*"}]}, "InvalidInput", "reads endpoint only"),
    ("reads", {"class": "header", "regions": [{"referenceName": "chr1"}]}, "InvalidInput", "regions"),
    ("reads", {"class": "header", "fields": ["QNAME"]}, "InvalidInput", "fields"),
    ("reads", {"class": "body"}, "InvalidInput", "class must be 'header'"),
    ("reads", {"class": None}, "InvalidInput", "class must be a string"),
    ("reads", {"format": "VCF"}, "UnsupportedFormat", "BAM or CRAM"),
    ("reads", {"format": 1}, "InvalidInput", "format must be a string"),
    ("reads", {"fields": ["QNAME", "MAPQUAL"]}, "InvalidInput", "unknown field 'MAPQUAL'"),
    ("reads", {"fields": "QNAME"}, "InvalidInput", "fields must be a list of strings"),
    ("reads", {"tags": ["NM", 1]}, "InvalidInput", "tags must be a list of strings"),
    ("reads", {"tags": ["NM"], "notags": ["NM"]}, "InvalidInput", "both name NM"),
    ("variants", {"encryptionScheme": "c4gh2"}, "UnsupportedFormat", "encryptionScheme"),
])
def test_a_post_that_htsget_refuses_is_refused_with_its_error_name(endpoint, body, error, says):
    assert says in refused(lambda: tickets.from_post(endpoint, body), error)


def test_the_audit_names_the_region_asked_for():
    assert tickets.audit_region(TicketRequest("reads", header_only=True)) == "header"
    assert tickets.audit_region(TicketRequest("reads")) == "all"
    asked = TicketRequest("reads", regions=(Region("chr1", 100, 200), Region("chr2"), Region("*"), Region("3", 5)))
    assert tickets.audit_region(asked) == "chr1:100-200,chr2,*,3:5-"
    many = tickets.audit_region(TicketRequest("reads", regions=tuple(Region(f"chr{i}", i, i + 1) for i in range(500))))
    assert len(many) <= tickets.MAX_AUDIT_REGION and many.startswith("chr0:0-1,chr1:1-2,")
    shown = many.rsplit(",...", 1)[0].count(",") + 1
    assert many.endswith(f"({500 - shown} more regions)")


# -- the reader's key ----------------------------------------------------------------------------------------------


def _pem(raw: bytes) -> str:
    text = f"-----BEGIN CRYPT4GH PUBLIC KEY-----\n{base64.b64encode(raw).decode()}\n-----END CRYPT4GH PUBLIC KEY-----\n"
    return base64.b64encode(text.encode()).decode()


def test_the_readers_key_is_base64_of_its_key_file_as_htsget_rs_sends_it_or_of_its_bytes():
    key_file = DATA / "crypt4gh" / "alice.pub"
    assert tickets.client_public_key(base64.b64encode(key_file.read_bytes()).decode()) == get_public_key(str(key_file))
    assert tickets.client_public_key(_pem(READER_PUBLIC)) == READER_PUBLIC
    assert tickets.client_public_key(base64.b64encode(READER_PUBLIC).decode()) == READER_PUBLIC


@pytest.mark.parametrize("value", [None, "", "not base64!", base64.b64encode(b"short").decode(),
                                   base64.b64encode(bytes(32)).decode(), "QUFB" * 300, _pem(b"x" * 31),
                                   base64.b64encode(b"-----BEGIN CRYPT4GH PUBLIC KEY-----\nAAAA\n").decode()])
def test_a_missing_or_malformed_readers_key_is_invalid_input(value):
    assert tickets.PUBLIC_KEY_HEADER in refused(lambda: tickets.client_public_key(value), "InvalidInput")


# -- Crypt4GH selections -------------------------------------------------------------------------------------------


def _encrypt(data: bytes) -> bytes:
    out = io.BytesIO()
    crypt4gh.lib.encrypt([(0, os.urandom(32), sodium.derive_pk(ARCHIVE_SECRET))], io.BytesIO(data), out)
    return out.getvalue()


def _decrypt(data: bytes) -> bytes:
    out = io.BytesIO()
    crypt4gh.lib.decrypt([(0, READER_SECRET, None)], io.BytesIO(data), out)
    return out.getvalue()


@st.composite
def plaintext_and_ranges(draw):
    size = draw(st.integers(0, 6)) * SEGMENT_SIZE + draw(st.integers(1, SEGMENT_SIZE))
    near_a_boundary = st.builds(lambda s, d: min(size, max(0, s * SEGMENT_SIZE + d)),
                                st.integers(0, size // SEGMENT_SIZE + 1), st.integers(-2, 2))
    cuts = sorted(draw(st.lists(st.one_of(st.integers(0, size), near_a_boundary), min_size=0, max_size=12)))
    ranges = []
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        if draw(st.booleans()) or b > a:
            ranges.append((a, b))  # some empty, some touching: the selection drops and joins them
    return size, ranges


@settings(max_examples=80, derandomize=True, deadline=None)
@given(plaintext_and_ranges(), st.integers(0, 2**32))
async def test_the_header_and_the_selected_segments_decrypt_to_exactly_the_ranges(case, seed):
    size, ranges = case
    plain = random.Random(seed).randbytes(size)
    stored = _encrypt(plain)
    obj = await ArchivedObject.open(BytesSource(stored), ARCHIVE_SECRET)
    selection = tickets.c4gh_selection(ranges)
    body = b"".join(stored[obj.body_offset + a:obj.body_offset + b] for a, b in selection.body_ranges(obj.body_size))
    wanted = b"".join(plain[a:b] for a, b in ranges)
    assert _decrypt(obj.header_for(READER_PUBLIC, list(selection.edit_list)) + body) == wanted
    sent = sum(end - first for first, end in selection.runs)
    needed = len({s for a, b in ranges if b > a for s in range(a // SEGMENT_SIZE, (b - 1) // SEGMENT_SIZE + 1)})
    assert sent == needed  # each segment holding a wanted byte, once; no other


def test_segments_left_out_between_two_ranges_make_no_empty_skip():
    # [0, 64 KiB) is segment 0 whole; [128 KiB, +10) starts segment 2: nothing lies between them once segment 1 is left out
    selection = tickets.c4gh_selection([(0, SEGMENT_SIZE), (2 * SEGMENT_SIZE, 2 * SEGMENT_SIZE + 10)])
    assert selection.runs == ((0, 1), (2, 3))
    assert selection.edit_list == (0, SEGMENT_SIZE + 10)


def test_ranges_out_of_file_order_are_a_bug_not_a_ticket():
    with pytest.raises(ValueError, match="out of file order"):
        tickets.c4gh_selection([(100, 200), (0, 10)])


def test_a_long_run_of_segments_is_cut_into_urls_of_whole_segments():
    selection = tickets.c4gh_selection([(0, 10 * SEGMENT_SIZE)])
    body_size = 10 * CIPHER_SEGMENT_SIZE
    cut = selection.body_ranges(body_size, max_bytes=3 * CIPHER_SEGMENT_SIZE + 5)
    assert cut == [(0, 3 * CIPHER_SEGMENT_SIZE), (3 * CIPHER_SEGMENT_SIZE, 6 * CIPHER_SEGMENT_SIZE),
                   (6 * CIPHER_SEGMENT_SIZE, 9 * CIPHER_SEGMENT_SIZE), (9 * CIPHER_SEGMENT_SIZE, body_size)]
    assert tickets.split_range(0, 10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert tickets.range_header(65536, 1003751) == {"Range": "bytes=65536-1003750"}
