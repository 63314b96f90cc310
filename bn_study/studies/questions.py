"""The questions REPORT.md answers first, each with the declared claims that answer it.

A reader asks what BN does to speed, to accuracy, to the learning rates that train, and so on; the studies are cut by
experiment instead. This is the one place a claim is filed under a question (a test checks that every declared claim is
under exactly one), so the report's opening and its figure of every claim group the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    name: str
    asks: str
    claims: tuple[str, ...]


QUESTIONS = (
    Question(
        "speed",
        "Does BN train in fewer steps?",
        (
            "fig1.faster",
            "fig1.faster_val",
            "fig1_second_lr.faster",
            "fig1_second_lr.faster_val",
            "placement.circles_after_faster",
            "inception_table.x5_faster",
            "inception_table.x5_faster_precise",
            "inception_table.bn_part_of_x5",
            "inception_table.bn_part_of_x5_precise",
            "inception_table.bn_baseline_faster",
            "inception_table.bn_baseline_faster_precise",
        ),
    ),
    Question(
        "accuracy",
        "Does BN end at a higher accuracy?",
        (
            "fig1.accuracy",
            "fig1_second_lr.accuracy",
            "keras_blog.relu_lr0.01",
            "keras_blog.relu_lr0.01_batch_stats",
            "keras_blog.relu_lr0.05",
            "keras_blog.relu_lr0.05_batch_stats",
            "keras_blog.sigmoid_lr0.01",
            "keras_blog.sigmoid_lr0.01_batch_stats",
            "keras_blog.sigmoid_lr0.05",
            "keras_blog.sigmoid_lr0.05_batch_stats",
            "keras_blog.sigmoid_lr0.001",
            "keras_blog.sigmoid_lr0.001_batch_stats",
            "inception_table.sigmoid",
            "dropout.hurts_with_bn",
        ),
    ),
    Question(
        "learning_rates",
        "Does BN train at higher learning rates?",
        (
            "lr_sensitivity.sigmoid",
            "lr_sensitivity.relu",
            "lr_sensitivity.sigmoid_relative",
            "lr_sensitivity.relu_relative",
        ),
    ),
    Question(
        "initialisation",
        "Does BN make the initial weights' scale matter less?",
        ("init_scale.trainable_range", "init_scale.trainable_range_relative"),
    ),
    Question(
        "placement",
        "Where does BN go: before or after the activation, or on the inputs?",
        (
            "placement.relu_before",
            "placement.sigmoid_after",
            "placement.tanh_after",
            "placement.circles_before_hovers",
            "input_bn.feature",
            "input_bn.scalar",
        ),
    ),
    Question("batch_size", "Do small batches hurt BN?", ("batch_size.small_hurts_bn", "batch_size.renorm_helps")),
    Question(
        "inference",
        "Are BN's moving averages the right statistics at test time?",
        (
            "keras_blog.moving_average_lag",
            "fig1_precise.steadier_than_moving",
            "mechanisms.moving_average_lag",
            "bn_inference.lag_short",
            "bn_inference.lag_after_debiasing",
            "bn_inference.precise_repairs",
            "bn_inference.moving_fine_when_long",
            "bn_inference.precise_never_hurts",
            "bn_inference.cnn_lag",
            "bn_inference.cnn_lag_after_debiasing",
            "recurrent.moving_averages_lag",
        ),
    ),
    Question(
        "depth",
        "Does BN train deep networks?",
        (
            "depth.bn_gradients_explode",
            "depth.linear_reduces_explosion",
            "depth.tanh_explodes_too",
            "depth.bn_trains_tens_of_layers",
            "depth.bn_trains_tens_of_layers_precise",
            "depth.bn_trains_50_layers",
            "depth.bn_trains_50_layers_precise",
            "depth.deep_bn_untrainable",
            "depth.deep_bn_untrainable_precise",
            "depth.bn_beats_he_init",
            "depth.bn_beats_he_init_precise",
        ),
    ),
    Question(
        "normalizers",
        "Do layer or group normalisation do what BN does?",
        (
            "normalizers.layer_lr_range_like_bn",
            "normalizers.layer_lr_range_beats_none",
            "normalizers.layer_faster_than_none",
            "normalizers.layer_ignores_small_batch",
            "normalizers.cnn_group_like_batch",
            "normalizers.cnn_layer_below_batch",
            "normalizers.cnn_group_like_precise_bn",
            "normalizers.cnn_layer_below_precise_bn",
        ),
    ),
    Question(
        "recurrent",
        "Does BN (or layer norm) help a recurrent network?",
        (
            "recurrent.bn_lstm_faster_in_order",
            "recurrent.bn_lstm_faster_permuted",
            "recurrent.bn_lstm_accuracy_in_order",
            "recurrent.bn_lstm_accuracy_permuted",
            "recurrent.ln_lstm_faster_in_order",
        ),
    ),
    Question(
        "mechanisms",
        "Why: does BN steady the layers' inputs, smooth the loss, and how does dropout disturb it?",
        (
            "fig1.stable_mean",
            "fig1.stable_spread",
            "fig1_second_lr.stable_mean",
            "fig1_second_lr.stable_spread",
            "fig1_precise.stable_median",
            "fig1_precise.stable_spread",
            "mechanisms.ics",
            "mechanisms.loss_range",
            "mechanisms.grad_change_max",
            "mechanisms.beta_smoothness",
            "dropout.shift_from_dropout",
            "dropout.shift_before_vs_after",
        ),
    ),
)
