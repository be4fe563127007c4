"""`header()`: the MSH fields the hub needs for dedupe, routing and ACKs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from adapters.his.header import header
from tests.unit.adapters.test_his_samples import sample


class TestHeader:
    def test_fields_of_a_utf8_sample(self):
        """MSH-3..12 and MSH-18 are read as sent, with how the payload was decoded."""
        h = header(sample("01_dft_p03_ptca_prt_utf8.hl7"))
        assert h.sending_application == "WINNING_HIS^2.16.840.1.113883.3.9999.1^ISO"
        assert h.sending_facility == "XXRMYY^XX市第一人民医院"
        assert (h.receiving_application, h.receiving_facility) == ("HUB^HUB", "XXRMYY")
        assert h.message_type == "DFT^P03^DFT_P03"
        assert (h.message_code, h.trigger_event, h.type_label) == ("DFT", "P03", "DFT^P03")
        assert (h.control_id, h.processing_id, h.version) == ("DFT20240612001", "P", "2.7")
        assert (h.charset, h.encoding, h.how_decided) == ("UNICODE UTF-8", "utf-8", "msh18")
        assert h.messages == 1

    def test_gbk_sample_is_decoded_by_its_msh18(self):
        """The GBK sample's MSH-18 `GBK` selects GB18030 and is kept for the ACK to echo."""
        h = header(sample("02_dft_p03_pacemaker_gbk.hl7"))
        assert (h.charset, h.encoding, h.how_decided) == ("GBK", "gb18030", "msh18")
        assert h.sending_facility == "XXRMYY^XX市第一人民医院"

    def test_batch_reports_the_first_message_and_the_count(self):
        """For a batch the header is the first MSH's and `messages` counts them all."""
        h = header(sample("15_batch_fhs_two_dft.hl7"))
        assert (h.control_id, h.messages) == ("DFT20240617001", 2)

    def test_dedupe_key_is_msh3_msh4_msh10(self):
        """Two messages with the same sender, facility and control id share the dedupe key."""
        a = header(b"MSH|^~\\&|A|F|||20240101||ADT^A01|42|P|2.5\rPID|1\r")
        b = header(b"MSH|^~\\&|A|F|X|Y|20240202||ADT^A08|42|P|2.5\rPID|2\r")
        c = header(b"MSH|^~\\&|A|G|||20240101||ADT^A01|42|P|2.5\r")
        assert a.dedupe_key == b.dedupe_key != c.dedupe_key

    def test_missing_control_id_is_read_without_a_dedupe_key(self):
        """An empty MSH-10 is read (the hub answers and refuses it), but gives no dedup key."""
        h = header(b"MSH|^~\\&|A|F|||20240101||ADT^A01||P|2.5\r")
        assert (h.control_id, h.dedupe_key) == ("", None)

    def test_missing_message_type_is_malformed(self):
        """Without MSH-9 the message cannot be routed."""
        with pytest.raises(MalformedMessage, match="MSH-9"):
            header(b"MSH|^~\\&|A|F|||20240101|||42|P|2.5\r")

    def test_no_msh_is_malformed(self):
        """The deliberately malformed sample (no MSH) is refused with a clear reason."""
        with pytest.raises(MalformedMessage, match="no MSH segment"):
            header(sample("13_malformed_no_msh.hl7"))

    def test_header_reads_a_truncated_first_line(self):
        """An MSH alone (as cut from the head of an oversize frame) is enough."""
        assert header(b"MSH|^~\\&|A|F|||20240101||ORU^R01|77|P|2.5").control_id == "77"

    @given(st.binary(max_size=300))
    @settings(max_examples=300, deadline=None)
    def test_any_bytes_give_a_header_or_malformed(self, payload):
        """Fuzz: arbitrary bytes never raise anything but MalformedMessage."""
        try:
            h = header(payload)
        except MalformedMessage:
            return
        assert h.control_id

    @given(st.text(alphabet="|^~\\&ABC19 \r\n", max_size=120))
    @settings(max_examples=300, deadline=None)
    def test_any_delimiter_soup_after_msh_gives_a_header_or_malformed(self, tail):
        """Fuzz: MSH followed by delimiter-heavy text never raises anything but MalformedMessage."""
        try:
            header(("MSH" + tail).encode())
        except MalformedMessage:
            return
