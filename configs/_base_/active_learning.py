# Active-learning defaults shared by every mmsaal config. `tools/train_al.py`
# turns `active_learning` into an ActiveLearningHook, switches the train
# sampler to LabeledSetSampler and sets
# train_cfg.max_epochs = (num_rounds + 1) * epochs_per_round.
# Override a field in a child config (`active_learning = dict(budget=0.05)`)
# or on the command line (`--cfg-options active_learning.budget=0.05`).
custom_imports = dict(imports=['mmsaal'], allow_failed_imports=False)

active_learning = dict(
    pool_sampler=dict(type='SAALSampler'),
    initial_labeled=0.05,
    budget=0.025,
    num_rounds=5,
    epochs_per_round=1,
    pool_subset=None,
    reset_each_round=False,
    seed=0,
    pool_dataloader=dict(batch_size=2, num_workers=2))
