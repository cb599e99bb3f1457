import numpy as np
from PIL import Image

from arc24_lib.plotting import ARC_PALETTE, plot_predictions, plot_task, save_figure


def test_plot_task_writes_png_with_arc_colours(tmp_path, arc1_training):
    task = arc1_training["6150a2bd"]
    path = save_figure(plot_task(task), tmp_path / "pictures" / "task.png")
    image = np.asarray(Image.open(path).convert("RGB"))
    colours = {tuple(int(ARC_PALETTE[v][i:i + 2], 16) for i in (1, 3, 5))
               for ex in task.examples for g in (ex.input, ex.output) for v in np.unique(g)}
    present = {tuple(c) for c in image.reshape(-1, 3)}
    assert colours <= present


def test_plot_predictions_marks_missing_and_wrong_answers(tmp_path, arc1_training):
    task = arc1_training["6150a2bd"]
    truth = task.test[0].output
    fig = plot_predictions(task, [[truth, None]], correct=[[True, False]])
    titles = [ax.get_title() for ax in fig.axes]
    assert "attempt 1 ✓" in titles and "attempt 2 ✗" in titles
    assert save_figure(fig, tmp_path / "p.png").stat().st_size > 1000
