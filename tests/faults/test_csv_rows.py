"""Item 8: in a csv source, a non-UTF-8 row and a row whose quote is never closed are each
rejected with their own line number; every other row, before and after, is kept."""

from PIL import Image

from clipflow.data.sources import read_source

ROWS = [
    b"filepath,title\n",  # line 1
    b"img0.jpg,a cat\n",  # 2
    b"img1.jpg,caf\xe9 au lait\n",  # 3: Latin-1, not UTF-8
    b'img2.jpg,"a dog\n',  # 4: a quote never closed
    b"img3.jpg,a bird\n",  # 5
    b'img4.jpg,"a caption on\n',  # 6: a quoted caption over two lines
    b'two lines"\n',  # 7
    b"img5.jpg,a fish\n",  # 8
    b'img6.jpg,"open to the end\n',  # 9: never closed either, at the end of the file
]


def test_bad_rows_are_rejected_alone(tmp_path):
    for i in range(7):
        Image.new("RGB", (4, 4)).save(tmp_path / f"img{i}.jpg")
    source = tmp_path / "train.csv"
    source.write_bytes(b"".join(ROWS))
    table = read_source("helip_csv", source)
    assert list(table.manifest["source_row"]) == [2, 5, 6, 8]
    assert list(table.manifest["caption"]) == [
        "a cat",
        "a bird",
        "a caption on\ntwo lines",
        "a fish",
    ]
    bad = table.bad_rows
    assert list(bad["source_row"]) == [3, 4, 9]
    assert list(bad["reason"]) == ["malformed line"] * 3
    assert bad["detail"].iloc[0] == "not UTF-8"
    assert all(d.startswith("not valid csv (") for d in bad["detail"].iloc[1:])
    assert not bad["detail"].str.contains("\n").any()
