# The pixel-based variant: 2.2% of the target pixels over 5 rounds, ranked
# pixel by pixel (RIPU's pixel-based setting labels fewer pixels than its
# region-based one). Pixels are picked by score alone: the region config's
# diversity='classes' spreads k-means++ picks one at a time, and a pixel
# round picks 9,227 pixels an image (27.4 million over Cityscapes train);
# tools/misc/scale_sim.py did not finish one 1024x2048 image's round with it
# in 600 s (docs/en/advanced_guides/pool_sizes.md), against seconds for the whole pool without.
_base_ = './saal_deeplabv3plus_r101_gta2cityscapes.py'
active_learning = dict(
    granularity='pixel',
    budget=0.0044,
    pool_sampler=dict(diversity=False))
