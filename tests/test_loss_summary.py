"""The end-of-fit loss summary (LossSummary): first and last windows that make sense for any run length."""

import torch


def test_loss_summary_windows_never_overlap_in_short_runs():
    from vidiff.lit.callbacks import LossSummary

    def run(steps):
        cb = LossSummary(window=50)
        for i in range(steps):
            cb.on_train_batch_end(None, None, {"loss": torch.tensor(float(i))}, None, i)
        return cb.summary()

    assert run(0) is None
    assert run(1) == (0.0, 0.0, 1)
    assert run(20) == (4.5, 14.5, 10)  # steps 0-9 -> steps 10-19
    assert run(300) == (24.5, 274.5, 50)
