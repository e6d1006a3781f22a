# Copyright (c) mmsaal contributors. All rights reserved.
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup


def readme() -> str:
    with open('README.md', encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    scope: dict = {}
    with open(osp.join('mmsaal', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(path: str) -> list:
    """Requirement lines of a file, without comments."""
    with open(path, encoding='utf-8') as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def add_mim_extension() -> None:
    """Put the configs where mmengine reads ``mmsaal::`` paths from,
    ``mmsaal/.mim/configs``, as mmpretrain's setup.py does: a link in an
    editable install (the checkout's configs, edits included), a copy in a
    built wheel or sdist. ``model-index.yml`` lists no model weights."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    here = osp.dirname(osp.abspath(__file__))
    mim = osp.join(here, 'mmsaal', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in ('configs', 'model-index.yml'):
        source = osp.join(here, name)
        target = osp.join(mim, name)
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        if mode == 'symlink':
            os.symlink(osp.relpath(source, mim), target)
        elif osp.isdir(source):
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)


add_mim_extension()
setup(
    name='mmsaal',
    version=get_version(),
    description='Sharpness-Aware Active Learning (SAAL) for MMDetection and '
    'MMSegmentation',
    long_description=readme(),
    long_description_content_type='text/markdown',
    keywords='active learning, object detection, semantic segmentation, '
    'domain adaptation, openmmlab',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    package_data={'mmsaal': ['.mim/model-index.yml', '.mim/configs/*.py',
                             '.mim/configs/*/*.py',
                             '.mim/configs/*/*/*.py']},
    python_requires='>=3.8',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require=dict(tests=parse_requirements('requirements/tests.txt')),
    classifiers=[
        'License :: OSI Approved :: Apache Software License',
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    license='Apache License 2.0',
    zip_safe=False)
