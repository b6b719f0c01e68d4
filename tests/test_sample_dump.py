"""`make eval … DUMP=1`: every test output written for outside scorers (syncnet_python on videos with their
audio, pytorch-fid / clean-fid on flat image folders), listed in an index."""

import csv

import av

from experiments.evaluate import SharedOptions, evaluate


def test_dump_writes_playable_videos_with_audio_frame_folders_and_an_index(smoke_run, tmp_path):
    run_dir = smoke_run("e2e_nr")
    evaluate(
        "e2e_nr",
        [str(run_dir / "e2e_nr")],
        data=None,
        out=str(tmp_path),
        options={"max_clips": 1},
        use_wandb=False,
        shared=SharedOptions(max_items=2, dump=True),
    )
    (dump,) = (tmp_path / "dump").iterdir()
    rows = list(csv.DictReader((dump / "index.csv").open()))
    assert len(rows) == 2
    for row in rows:
        for side in ("generated_video", "real_video"):
            with av.open(str(dump / row[side])) as container:
                assert len(container.streams.audio) == 1
                assert sum(1 for _ in container.decode(video=0)) == int(row["frames"]) > 0
    generated = sorted((dump / "frames" / "generated").glob("*.png"))
    assert len(generated) == sum(int(row["frames"]) for row in rows)
    assert len(list((dump / "frames" / "real").glob("*.png"))) >= len(rows)
