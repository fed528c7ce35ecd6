"""Label augmentation and pretraining building blocks: Tukey loss, classifier labels, masks,
the augmented loss, target standardisation."""

import numpy as np
import pytest
import torch

from eiplab.strategies.augment import AugmentedLoss
from eiplab.strategies.labels import best_eip_labels
from eiplab.strategies.pretrain import masked_mse, valid_mask
from eiplab.strategies.tukey import TUKEY_C, robust_scale, tukey_biweight

C = TUKEY_C


def rho(r):  # hand-written Tukey biweight
    return C**2 / 6 * (1 - (1 - (r / C) ** 2) ** 3) if abs(r) <= C else C**2 / 6


def drho(r):
    return r * (1 - (r / C) ** 2) ** 2 if abs(r) <= C else 0.0


def test_tukey_values_and_gradients_by_hand():
    r = torch.tensor([0.0, 1.0, -2.0, 4.0, 100.0], dtype=torch.float64, requires_grad=True)
    loss = tukey_biweight(r, scale=torch.tensor(1.0, dtype=torch.float64))
    expected = np.mean([rho(v) for v in (0.0, 1.0, -2.0, 4.0, 100.0)])
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(r.grad.numpy(), [drho(v) / 5 for v in (0.0, 1.0, -2.0, 4.0, 100.0)], rtol=1e-12)
    assert r.grad[-1] == 0.0  # a gross outlier pulls nothing
    assert rho(100.0) == pytest.approx(C**2 / 6)


def test_tukey_with_mad_scale():
    r = torch.tensor([0.1, -0.2, 0.3, 0.05, 5.0], dtype=torch.float64)
    s = 1.4826 * np.median(np.abs(r.numpy()))
    assert robust_scale(r).item() == pytest.approx(s)
    expected = np.mean([rho(v / s) for v in r.numpy()])
    assert tukey_biweight(r).item() == pytest.approx(expected, rel=1e-12)


def test_tukey_scale_takes_the_lower_middle_value_for_an_even_batch():
    """Pinned decision (see robust_scale): torch.median, the lower of the two middle |residuals|
    of an even batch, not their mean (1.4826 * 2, not 1.4826 * 2.5, here)."""
    r = torch.tensor([-4.0, 1.0, 3.0, -2.0], dtype=torch.float64)
    assert robust_scale(r).item() == pytest.approx(1.4826 * 2.0)
    assert robust_scale(r[:3]).item() == pytest.approx(1.4826 * 3.0)  # odd: the middle value


def test_tukey_scale_floor_and_detached():
    r = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    assert robust_scale(r, eps=1e-3).item() == pytest.approx(1e-3)
    assert not robust_scale(r).requires_grad
    assert tukey_biweight(r).item() == 0.0
    assert tukey_biweight(torch.zeros(0)).item() == 0.0


def test_best_eip_labels_hand_built():
    dft = np.array([-10.0, -10.0, -20.0, -5.0, -8.0])
    n = np.array([2, 2, 4, 1, 2])
    eip = np.array(
        [
            [-10.05, -10.5, -9.0],  # EIP 0 best, 0.025 eV/atom
            [-11.0, -9.9, np.nan],  # EIP 1 best (0.05 eV/atom); NaN ignored
            [-22.0, -18.0, -21.0],  # best error 0.25 eV/atom > tau -> none
            [np.inf, np.nan, -5.05],  # inf/NaN never best -> EIP 2
            [np.nan, np.nan, np.nan],  # nothing valid -> none
        ]
    )
    np.testing.assert_array_equal(best_eip_labels(eip, dft, n, tau=0.1), [0, 1, 3, 2, 3])
    np.testing.assert_array_equal(best_eip_labels(eip, dft, n, tau=0.3)[2], 2)  # -21: 0.25 eV/atom
    with pytest.raises(ValueError):
        best_eip_labels(eip[:, 0], dft, n)


def test_valid_mask_and_masked_mse():
    e = np.array([[-10.0, np.nan], [np.inf, -3.0], [-1000.0, -4.0]])
    mask = valid_mask(e, np.array([2, 1, 2]), max_abs_per_atom=200.0)
    np.testing.assert_array_equal(mask, [[True, False], [False, True], [False, True]])

    class B(dict):
        pass

    batch = B(y=torch.tensor([[1.0, 99.0], [2.0, 0.0]]), target_mask=torch.tensor([[True, False], [False, True]]))
    pred = torch.tensor([[2.0, 0.0], [50.0, 1.0]], requires_grad=True)
    loss = masked_mse(pred, batch)
    assert loss.item() == pytest.approx((1.0 + 1.0) / 2)
    loss.backward()
    assert pred.grad[0, 1] == 0 and pred.grad[1, 0] == 0  # invalid targets get no gradient


def test_augmented_loss_combines_terms():
    class B(dict):
        pass

    batch = B(
        y=torch.tensor([-10.0, -20.0, -5.0, -6.0], dtype=torch.float64),
        is_eip=torch.tensor([False, False, True, True]),
        n_atoms=torch.tensor([2, 4, 1, 1]),
    )
    pred = torch.tensor([[-10.5], [-19.0], [-5.1], [-4.0]], dtype=torch.float64)
    loss = AugmentedLoss(weight=0.5, tukey=True)(pred, batch)
    mse = (0.25 + 1.0) / 2
    res = torch.tensor([-0.1, 2.0], dtype=torch.float64)
    assert loss.item() == pytest.approx(mse + 0.5 * tukey_biweight(res).item())
    plain = AugmentedLoss(weight=0.5, tukey=False)(pred, batch)
    assert plain.item() == pytest.approx(mse + 0.5 * (0.01 + 4.0) / 2)
    only_dft = AugmentedLoss(weight=0.5)(pred[:2], B(y=batch["y"][:2], is_eip=batch["is_eip"][:2], n_atoms=batch["n_atoms"][:2]))
    assert only_dft.item() == pytest.approx(mse)


def test_mp_validation_metric_is_the_mean_over_eips():
    """Each EIP weighs the same in the MP checkpoint metric: an EIP masked on most configs does
    not count less (pooling all valid entries would give (1 + 1 + 1 + 3) / 4 = 1.5 here)."""
    from eiplab.strategies.pretrain import MASK, TargetScaler, eip_mae_metrics

    scaler = TargetScaler(["a", "b"], ["Si"], np.zeros((2, 1)), np.array([1.0, 1.0]))

    class Batch(dict):
        def to(self, device):
            return self

    data = Batch(y=torch.zeros(3, 2), **{MASK: torch.tensor([[True, True], [True, False], [True, False]])})

    def model(b):
        return torch.tensor([[1.0, 3.0], [1.0, 9.0], [1.0, 9.0]])  # EIP a off by 1 eV, b by 3 eV where valid

    model.eval = lambda: None
    assert eip_mae_metrics(scaler)(model, [data], "cpu")["val_eip_mae"] == pytest.approx((1.0 + 3.0) / 2)


def test_auto_tau_is_a_training_quantile_of_the_best_eip_error():
    """tau="auto": the 0.75 quantile of the best aligned EIP's error per atom over the given
    (training) configs; a failed EIP (NaN) never counts as best."""
    from eiplab.strategies.labels import auto_tau, best_eip_errors

    n = np.array([1, 2, 4, 1])
    dft = np.array([-5.0, -10.0, -20.0, -5.0])
    eip = np.array([[-5.1, np.nan], [-10.0, -10.4], [-20.8, -20.4], [np.nan, np.nan]])
    errors = best_eip_errors(eip, dft, n)
    np.testing.assert_allclose(errors, [0.1, 0.0, 0.1, np.inf])
    assert auto_tau(eip, dft, n) == pytest.approx(np.quantile([0.1, 0.0, 0.1], 0.75))
    with pytest.raises(ValueError, match="at least one EIP"):
        auto_tau(eip[3:], dft[3:], n[3:])
