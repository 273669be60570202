"""Labels from vector files (`cmap samples --vector`): parcel polygons in another CRS land on
the pixels the label raster they came from marks; buffers, small parcels, points, broken or
outside geometries; per-parcel series."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pytest
from rasterio.features import shapes
from shapely.geometry import Point, Polygon, box, shape

from cmap.data.labels.sources import parcel_ids
from cmap.data.labels.vectors import read_frame
from cmap.main import main
from tests.data.labels.test_label_sources import GRID, fields, stack_and_labels  # noqa: F401


def parcels_of(labels: np.ndarray) -> gpd.GeoDataFrame:
    """The label raster's parcels as polygons (UTM 31N), one row per parcel."""
    patches = shapes(labels.astype(np.int32), mask=labels != 0, transform=GRID, connectivity=4)
    rows = [(shape(g), str(int(v))) for g, v in patches]
    return gpd.GeoDataFrame(
        {"crop": [v for _, v in rows], "parcel": [f"P{k}" for k in range(len(rows))]},
        geometry=[g for g, _ in rows],
        crs="EPSG:32631",
    )


def pixels(folder) -> dict[str, str]:
    """poi row/col -> label over the three splits of a samples folder."""
    found = {}
    for split in ("train", "val", "test"):
        table = pq.read_table(folder / split / "labels.pq").to_pydict()
        for poi, label in zip(table["poi_id"], table["label"]):
            found[poi[poi.index("_r") :] if "_r" in poi else "_" + poi] = label
    return found


def run(root, out, vector, *extra):
    main(
        ["samples", str(root / "S2.nc"), str(root / out), "--vector", str(vector), *map(str, extra)]
    )


@pytest.mark.parametrize("suffix", [".gpkg", ".fgb", ".parquet", ".shp"])
def test_polygons_in_another_crs_give_the_label_rasters_pixels(stack_and_labels, suffix):  # noqa: F811
    root = stack_and_labels
    parcels = parcels_of(fields()).to_crs(4326)
    vector = root / f"parcels{suffix}"
    parcels.to_parquet(vector) if suffix == ".parquet" else parcels.to_file(vector)
    run(
        root,
        "from_vector",
        vector,
        "--label_column",
        "crop",
        "--id_column",
        "parcel",
    )
    main(
        [
            "samples",
            str(root / "S2.nc"),
            str(root / "from_raster"),
            "--label_raster",
            str(root / "labels.nc"),
        ]
    )
    vector, raster = pixels(root / "from_vector"), pixels(root / "from_raster")
    assert len(vector) == (fields() != 0).sum() == 132 and vector == raster
    # the parcels are the splits' groups: a parcel's pixels share a split
    labels = fields()
    ids = parcel_ids(labels, labels != 0)
    where = {}
    for split in ("train", "val", "test"):
        for poi in pq.read_table(root / "from_vector" / split / "labels.pq")["poi_id"].to_pylist():
            row, col = (int(v) for v in poi.split("_r")[1].split("_c"))
            where.setdefault(ids[row, col], set()).add(split)
    assert all(len(s) == 1 for s in where.values()) and len(where) == 8


def test_buffers_small_parcels_points_and_bad_geometries_are_counted(stack_and_labels, capsys):  # noqa: F811
    root = stack_and_labels
    frame = parcels_of(fields())
    extra = gpd.GeoDataFrame(
        {"crop": ["1200", "9120", "1200", None], "parcel": ["pt", "far", "empty", "nolabel"]},
        geometry=[
            Point(500_015, 4_799_915),
            Polygon([(0, 0), (100, 0), (100, 100), (0, 100)]),
            Polygon(),
            Point(500_005, 4_799_995),
        ],
        crs="EPSG:32631",
    )
    frame = gpd.GeoDataFrame(
        {"crop": [*frame["crop"], *extra["crop"]], "parcel": [*frame["parcel"], *extra["parcel"]]},
        geometry=[*frame.geometry, *extra.geometry],
        crs="EPSG:32631",
    )
    frame.to_file(root / "mixed.gpkg")
    capsys.readouterr()
    run(
        root,
        "buffered",
        root / "mixed.gpkg",
        "--label_column",
        "crop",
        "--id_column",
        "parcel",
        "--buffer",
        "10",
        "--min_pixels",
        "3",
    )
    said = capsys.readouterr().out
    assert (
        "mixed.gpkg: 12 geometries, skipped 1 without a label, 1 empty or invalid, 2 emptied "
        "by the 10 inward buffer, 1 outside the cube, 1 under 3 pixel(s)" in said
    )
    found = pixels(root / "buffered")
    # fields of 3 x 6 pixels keep the pixels of their middle row whose centres lie more than
    # 10 m inside: 4 each; the two fields of 2 x 6 pixels (row 0 is unlabelled) vanish; the
    # point's single pixel is under min_pixels
    assert len(found) == 6 * 4 and not any(k.startswith(("_r1_", "_r2_", "_r8_c1")) for k in found)


def test_per_parcel_series_average_the_valid_pixels_of_each_date(stack_and_labels):  # noqa: F811
    root = stack_and_labels
    parcels_of(fields()).to_file(root / "parcels.gpkg")
    columns = ["--label_column", "crop", "--id_column", "parcel", "--split", "[1, 0, 0]"]
    run(root, "pixels", root / "parcels.gpkg", *columns)
    run(root, "means", root / "parcels.gpkg", *columns, "--series", "parcel_mean")
    run(root, "medians", root / "parcels.gpkg", *columns, "--series", "parcel_median")
    per_pixel = pq.read_table(root / "pixels" / "train" / "features.pq").to_pandas()
    per_pixel["parcel"] = per_pixel["poi_id"].str.split("_r").str[0]
    expected = per_pixel.groupby(["parcel", "date"])["B04"]
    means = (
        pq.read_table(root / "means" / "train" / "features.pq")
        .to_pandas()
        .set_index(["poi_id", "date"])
    )
    medians = (
        pq.read_table(root / "medians" / "train" / "features.pq")
        .to_pandas()
        .set_index(["poi_id", "date"])
    )
    assert len(means) == len(expected.mean()) == 8 * 5
    assert np.allclose(
        means["B04"].sort_index().to_numpy(), expected.mean().sort_index().to_numpy()
    )
    assert np.allclose(
        medians["B04"].sort_index().to_numpy(), expected.median().sort_index().to_numpy()
    )
    labels = pq.read_table(root / "means" / "train" / "labels.pq").to_pydict()
    assert sorted(labels["poi_id"]) == [f"P{k}" for k in range(8)]


@pytest.mark.filterwarnings("ignore:'crs' was not provided")  # the file made without one
def test_vector_files_that_cannot_be_used_are_named(stack_and_labels, capsys):  # noqa: F811
    root = stack_and_labels
    frame = parcels_of(fields())
    frame.to_file(root / "parcels.gpkg")
    with pytest.raises(SystemExit):
        run(root, "o", root / "parcels.gpkg", "--label_column", "code")
    assert "parcels.gpkg: has no column 'code'; it has crop, parcel" in capsys.readouterr().err
    frame.set_crs(None, allow_override=True).to_file(root / "nocrs.shp")
    with pytest.raises(SystemExit):
        run(root, "o", root / "nocrs.shp", "--label_column", "crop")
    assert "nocrs.shp: has no CRS" in capsys.readouterr().err
    frame.set_geometry(frame.translate(10_000, 0)).to_file(root / "away.gpkg")
    with pytest.raises(SystemExit):
        run(root, "o", root / "away.gpkg", "--label_column", "crop")
    err = capsys.readouterr()
    assert "8 outside the cube" in err.out and "away.gpkg: gives no labelled pixel" in err.err
    assert not (root / "o").exists()


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet"])
def test_a_large_file_read_for_one_tile_reads_only_what_meets_it(tmp_path, suffix):
    """A 'national' file of 400 parcels over 20 km, read for a 1 km tile: only the parcels
    whose box meets the tile are read (with their feature ids), the others counted."""
    step = 1_000  # one 500 m parcel every km, 20 x 20
    cells = [(x, y) for y in range(20) for x in range(20)]
    frame = gpd.GeoDataFrame(
        {"crop": [f"c{x}_{y}" for x, y in cells] + ["none"]},
        geometry=[
            box(500_000 + x * step, 4_800_000 + y * step, 500_500 + x * step, 4_800_500 + y * step)
            for x, y in cells
        ]
        + [Polygon()],
        crs="EPSG:32631",
    )
    path = tmp_path / f"national{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_crs("EPSG:4326").to_file(path)
    tile = [((503_100, 4_805_100, 504_900, 4_806_900), "EPSG:32631")]  # cells x 3-4, y 5-6
    read, unread = read_frame(path, "crop", None, within=tile)
    named = sorted(read["crop"][~read.geometry.is_empty])
    assert named == ["c3_5", "c3_6", "c4_5", "c4_6"]
    assert unread["outside"] == 396 and unread["empty"] + read.geometry.is_empty.sum() == 1
    first = {".gpkg": 1, ".geojson": 0, ".parquet": 0}[suffix]  # GeoPackage ids count from 1
    assert read.index[read["crop"] == "c3_5"].tolist() == [first + 5 * 20 + 3]
    whole, nothing = read_frame(path, "crop", None)
    assert len(whole) == 401 and nothing == {"outside": 0, "empty": 0}
