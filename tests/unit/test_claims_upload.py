"""Uploaded peak tables (dashboard.claims.read_uploaded_table, column_guess): delimiters,
encodings, Excel's ways, limits, and hostile content that must give one line, not a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.claims import (
    FIELDS,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_ROWS,
    column_guess,
    read_uploaded_table,
    recognise_columns,
)
from tests.bad_inputs import SAMPLE

ROWS = [("-52", "-28", "42", "4.76", "Postcentral gyrus, L"), ("30", "-34", "-4", "4.56", "Hippocampus")]


def text(delimiter: str, quote_commas: bool = True) -> str:
    def cell(c: str) -> str:
        return f'"{c}"' if quote_commas and delimiter in c else c

    lines = [delimiter.join(["x", "y", "z", "T", "region"])] + [delimiter.join(cell(c) for c in row) for row in ROWS]
    return "\r\n".join(lines) + "\r\n"


def check_frame(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["x", "y", "z", "T", "region"]
    assert frame["x"].dtype == np.int64 and list(frame["x"]) == [-52, 30]
    assert frame["T"].dtype == float and list(frame["T"]) == [4.76, 4.56]
    assert list(frame["region"]) == ["Postcentral gyrus, L", "Hippocampus"]


@pytest.mark.parametrize("delimiter", ["\t", ",", ";"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_up001_delimiters_and_encodings(delimiter, encoding):
    check_frame(read_uploaded_table("peaks.csv", text(delimiter).encode(encoding)))


def test_up002_excel_ways():
    # sep= line, decimal commas in a semicolon file, a doubled quote, trailing empty columns, blank lines
    content = ('sep=;\r\nx;y;z;T;region;;\r\n-52;-28;42;4,76;"Postcentral ""gyrus"", L";;\r\n\r\n30;-34;-4;4,56;Hippocampus;;\r\n'
               .encode("utf-8-sig"))
    frame = read_uploaded_table("excel.csv", content)
    assert list(frame.columns) == ["x", "y", "z", "T", "region"]
    assert list(frame["T"]) == [4.76, 4.56] and frame["region"][0] == 'Postcentral "gyrus", L'
    # a region with semicolons in a comma file, a non-ASCII name, a missing value
    content = "x,y,z,Z,region,study\n1,2,3,n/a,Insula; anterior,Müller 2019\n4,5,6,3.1,Caudate,Ng\n".encode()
    frame = read_uploaded_table("b.csv", content)
    assert np.isnan(frame["Z"][0]) and frame["Z"][1] == 3.1 and frame["region"][0] == "Insula; anterior"
    assert frame["study"][0] == "Müller 2019"


def test_up003_the_samples_tables_read_as_the_folder_reads_them():
    for name in ("published_clusters", "literature_peaks"):
        path = SAMPLE / "tables" / f"{name}.tsv"
        frame = read_uploaded_table(path.name, path.read_bytes())
        folder = pd.read_csv(path, sep="\t")
        assert list(frame.columns) == list(folder.columns) and len(frame) == len(folder)
        pd.testing.assert_series_equal(frame["x"], folder["x"], check_names=False)


def test_up004_formulas_stay_text():
    content = b"x,y,z,region\n1,2,3,\"=cmd|' /C calc'!A0\"\n4,5,6,=1+2\n7,8,9,@SUM(A1)\n"
    frame = read_uploaded_table("evil.csv", content)
    assert list(frame["region"]) == ["=cmd|' /C calc'!A0", "=1+2", "@SUM(A1)"]


@pytest.mark.parametrize(("content", "words"), [
    (b"", "the file is empty"),
    (b"  \r\n\n ", "the file is empty"),
    (bytes(range(256)) * 4, "not a text table (binary data: NUL bytes)"),
    (b"PK\x03\x04" + b"\x00" * 100, "an Excel .xlsx"),
    (b"\x1f\x8b\x08\x00rest", "gzip-compressed"),
    (b"x,y,z\n1,2,\x07\n", "control character 0x07"),
    (b"\xff\xfe\x00\xd8", "not text (a UTF-16 byte-order mark"),
    (b"x,y,z\n\x81\x8d\x8f,1,2\n", "not text: neither UTF-8 nor Windows-1252"),
    (b"just one column\n1\n2\n", "one column only"),
    (b"sep=,\nxyz\n1\n", "one column only"),
    (b"x,y,z\n", "no rows under the header"),
    (b"x,y,x\n1,2,3\n", "duplicate column names 'x'"),
    (b"x,,z\n1,2,3\n", "column 2 has values but no name"),
    (b"x,y,z\n1,2,3,4\n", "row 1 under the header has 4 comma-separated fields, the header has 3"),
    (b'x,y,z\n1,"2,3\n', "cannot be read as comma-separated text"),
    (("x,y,z\n" + "1,2,3\n" * (MAX_UPLOAD_ROWS + 1)).encode(), f"more than {MAX_UPLOAD_ROWS} rows"),
    ((",".join(f"c{i}" for i in range(101)) + "\n" + ",".join("1" * 101) + "\n").encode(), "101 columns, more than 100"),
    (b"x,y,z\n" + b"1,2,3\n" * (2 * 1024 * 1024 // 6), "2.0 MiB, more than the 1 MiB"),
    (b'x,y,z\n1,2,"' + b"a" * 200_000 + b'"\n', "cannot be read as tab-, semicolon- or comma-separated text (field larger"),
])
def test_up005_bad_uploads_are_one_line(content, words):
    with pytest.raises(ValueError) as info:
        read_uploaded_table("dir/up.csv", content)
    message = str(info.value)
    assert message.startswith("up.csv: ") and words in message and "\n" not in message, message


def test_up006_limits_and_names():
    assert MAX_UPLOAD_BYTES == 1024 * 1024
    ok = ("x,y,z\n" + "1,2,3\n" * MAX_UPLOAD_ROWS).encode()
    assert len(read_uploaded_table("max.csv", ok)) == MAX_UPLOAD_ROWS
    with pytest.raises(ValueError, match=r"^the uploaded file: the file is empty"):
        read_uploaded_table("", b"")
    with pytest.raises(ValueError, match=r"^a\?b.csv: "):
        read_uploaded_table("C:\\Users\\me\\a\x07b.csv", b"")
    with pytest.raises(ValueError, match="no file content"):
        read_uploaded_table("a.csv", "x,y,z")  # type: ignore[arg-type]


def test_up007_random_bytes_never_crash():
    rng = np.random.default_rng(7)
    for size in (1, 10, 100, 5000):
        for _ in range(20):
            try:
                frame = read_uploaded_table("r.bin", rng.integers(0, 256, size, dtype=np.uint8).tobytes())
            except ValueError as exc:
                assert str(exc).startswith("r.bin: ") and "\n" not in str(exc)
            else:
                assert isinstance(frame, pd.DataFrame)
    # printable noise with delimiters: parsed or refused, one line either way
    alphabet = np.array(list(b'abc,;\t"\n\r 0123456789.-='))
    for _ in range(200):
        content = bytes(rng.choice(alphabet, 300).tolist())
        try:
            read_uploaded_table("p.csv", content)
        except ValueError as exc:
            assert str(exc).startswith("p.csv: ") and "\n" not in str(exc)


def test_up008_column_guess_never_raises():
    assert list(FIELDS) == ["x", "y", "z", "t", "zscore", "k", "p", "region", "contrast", "source"]
    assert all(isinstance(label, str) and label for label in FIELDS.values())
    guess = column_guess(["MNI X", "MNI Y", "foo", "T", "Z", "Author"])
    assert guess == {"x": "MNI X", "y": "MNI Y", "z": None, "t": "T", "zscore": "Z", "k": None, "p": None, "region": None,
                     "contrast": None, "source": "Author"}
    assert column_guess([]) == dict.fromkeys(FIELDS)
    assert column_guess(["a", "b", "c"], {"x": "a", "y": "b", "z": "c", "t": "missing"})["t"] is None  # only the table's columns
    # the same answer as recognise_columns where that succeeds
    cols = ["contrast", "x", "y", "z", "region", "k", "T", "Z", "p_fwe_wholebrain"]
    assert {f: c for f, c in column_guess(cols).items() if c is not None} == recognise_columns(cols)
