"""Test-only: mmpretrain's CIFAR10 / CIFAR100 check the md5 of the files
they read and download the real ones when it differs. A test's generated
CIFAR-layout files cannot match, and nothing may be downloaded here: a
user config imports this module (``custom_imports``) to skip that check
alone; the files are read as mmpretrain reads them."""
from mmpretrain.datasets import CIFAR10

CIFAR10._check_integrity = lambda self: True
