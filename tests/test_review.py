import json

import numpy as np
import pytest

from rainset.errors import ReviewFileError
from rainset.review import (
    Candidate,
    Decision,
    ReviewLog,
    auto_reviewer,
    decision_key,
    file_reviewer,
    preview_sheet,
)


def _cand(n=100, score=None, can_grow=True):
    return Candidate("scene", 0, n, np.zeros((4, 4, 3), np.uint8), score=score, can_grow=can_grow, grow_limit="the cap")


def test_log_records_each_decision_on_disk_and_reloads(tmp_path):
    path = tmp_path / "review.json"
    log = ReviewLog(path, params={"density": "normal"})
    log.record(_cand(100), Decision("more"))
    # Written as it is made, not at the end.
    on_disk = json.loads(path.read_text())
    assert on_disk["decisions"][decision_key("scene", 0, 100)]["action"] == "more"
    log.record(_cand(120), Decision("accept"))
    again = ReviewLog(path, params={"density": "normal"})
    assert again.get("scene/w00/n100") == Decision("more", "", "user")
    assert again.get("scene/w00/n120").action == "accept"
    assert again.get("scene/w00/n140") is None


def test_log_made_with_other_options_is_refused(tmp_path):
    path = tmp_path / "review.json"
    ReviewLog(path, params={"density": "normal"}).record(_cand(), Decision("accept"))
    with pytest.raises(ReviewFileError, match="density"):
        ReviewLog(path, params={"density": "dense"})


def test_corrupt_review_file_is_one_clear_error(tmp_path):
    path = tmp_path / "review.json"
    path.write_text("{ not json")
    with pytest.raises(ReviewFileError, match="review.json"):
        ReviewLog(path, params={})
    path.write_text(json.dumps({"decisions": {"a/w00/n1": {"action": "maybe"}}}))
    with pytest.raises(ReviewFileError, match="valid action"):
        ReviewLog(path, params={})


def test_file_reviewer_replays_and_names_missing_question(tmp_path):
    path = tmp_path / "decisions.json"
    ReviewLog(path, params={}).record(_cand(100), Decision("reject", "streaks"))
    review = file_reviewer(path)
    assert review(_cand(100)) == Decision("reject", "streaks", "file")
    with pytest.raises(ReviewFileError, match="scene/w00/n120"):
        review(_cand(120))
    with pytest.raises(ReviewFileError, match="not found"):
        file_reviewer(tmp_path / "nope.json")


def test_auto_reviewer_thresholds_and_cap():
    review = auto_reviewer(0.5)
    assert review(_cand(score=0.2)).action == "accept"
    assert review(_cand(score=0.9)).action == "more"
    d = review(_cand(score=0.9, can_grow=False))
    assert d.action == "reject" and "the cap" in d.reason


def test_preview_sheet_shows_difference_where_rain_is():
    clean = np.full((64, 96, 3), 100, np.uint8)
    rainy = clean.copy()
    rainy[40:60, 70:72] = 200
    sheet = preview_sheet(rainy, clean, title="t")
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    # Three panels side by side on top.
    assert sheet.shape[1] >= 3 * 96
    # The amplified-difference panel (third) is bright only where the streak is.
    top = sheet[36 : 36 + 64]
    diff_panel = top[:, 2 * 96 : 3 * 96, 0]
    assert diff_panel[40:60, 70:72].min() == 255
    assert diff_panel[30:40, 0:60].max() == 0


def _ranks(x):
    return np.argsort(np.argsort(x))


def test_split_half_score_ranks_candidates_like_the_true_error():
    from conftest import textured_background

    from rainset.demo import rainy_frames
    from rainset.groundtruth import estimate_clean
    from rainset.review import split_half_score

    bg = textured_background(96, 128, seed=4)
    scores, errors = [], []
    for density in ("light", "medium", "heavy"):
        full = np.stack(list(rainy_frames(bg, 60, noise_sigma=2, rng=3, density=density)))
        for n in (6, 10, 20, 40, 60):
            stack = full[:n]
            scores.append(split_half_score(stack, lambda s: estimate_clean(s).image))
            errors.append(np.abs(estimate_clean(stack).image.astype(int) - bg).mean())
    rho = np.corrcoef(_ranks(scores), _ranks(errors))[0, 1]
    assert rho > 0.9, (scores, errors)
    # More frames, more agreement, within each density.
    for d in range(3):
        assert scores[5 * d] > scores[5 * d + 2] > scores[5 * d + 4]
