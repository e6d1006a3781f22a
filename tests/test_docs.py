"""The docs a user reads: every relative link and anchor resolves, every
config they name exists and builds, every config they show builds, and
every field of ``active_learning`` (and of the SAAL sampler and the Label
Studio oracle) is documented."""
import glob
import inspect
import os.path as osp
import re

import pytest
from conftest import REPO

DOCS = [osp.join(REPO, 'README.md')] + sorted(
    glob.glob(osp.join(REPO, 'docs', '**', '*.md'), recursive=True))
FIELDS_DOC = osp.join(REPO, 'docs', 'en', 'user_guides',
                      'active_learning_fields.md')
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
CONFIG_PATH = re.compile(r'(?<![\w/:.])((?:configs/|mmsaal::)[\w/.-]+\.py)')


def prose_and_code(path):
    """(prose lines, [(language, code block)]) of a Markdown file."""
    prose, blocks, block = [], [], None
    for line in open(path, encoding='utf-8').read().splitlines():
        if line.startswith('```'):
            if block is None:
                block = (line[3:].strip(), [])
            else:
                blocks.append((block[0], '\n'.join(block[1])))
                block = None
        elif block is not None:
            block[1].append(line)
        else:
            prose.append(line)
    assert block is None, f'{path}: a code block is never closed'
    return prose, blocks


def anchors(path):
    """GitHub's anchors of a Markdown file's headings."""
    found = set()
    for line in prose_and_code(path)[0]:
        match = re.match(r'#{1,6} (.*)', line)
        if match:
            text = match.group(1).strip().lower()
            text = re.sub(r'[^\w\- ]', '', text)
            found.add(text.replace(' ', '-'))
    return found


def test_the_readme_is_a_front_page():
    assert len(open(DOCS[0], encoding='utf-8').read().splitlines()) <= 250


@pytest.mark.parametrize('path', DOCS, ids=lambda p: osp.relpath(p, REPO))
def test_every_relative_link_and_anchor_resolves(path):
    broken = []
    for line in prose_and_code(path)[0]:
        for target in LINK.findall(line):
            if re.match(r'[a-z]+://', target):
                continue
            file, _, anchor = target.partition('#')
            linked = osp.normpath(osp.join(osp.dirname(path), file)) \
                if file else path
            if not osp.exists(linked):
                broken.append(f'{target}: no such file')
            elif anchor and linked.endswith('.md') and \
                    anchor not in anchors(linked):
                broken.append(f'{target}: no such heading')
    assert not broken, broken


@pytest.mark.parametrize('path', DOCS, ids=lambda p: osp.relpath(p, REPO))
def test_no_doc_sends_users_where_they_cannot_go(path):
    """Users have neither the steering notes nor the issue tracker."""
    text = open(path, encoding='utf-8').read()
    assert not re.search(r'shared/[A-Z]+\.md|[Ii]ssue #\d', text), path


def named_configs():
    names = set()
    for path in DOCS:
        prose, blocks = prose_and_code(path)
        for text in prose + [code for _, code in blocks]:
            names.update(CONFIG_PATH.findall(text))
    return sorted(names)


def build(text, tmp_path):
    """``Config.fromfile`` of a config's text, as a user's file."""
    import mmsaal  # noqa: F401  (``mmsaal::`` is known once imported)
    from mmengine.config import Config
    config = tmp_path / 'from_the_docs.py'
    config.write_text(text)
    return Config.fromfile(str(config))


def test_every_config_the_docs_name_exists_and_builds(tmp_path):
    names = named_configs()
    assert 'configs/saal_faster_rcnn_voc.py' in names
    assert any(name.startswith('mmsaal::') for name in names)
    missing = [name for name in names if not name.startswith('mmsaal::')
               and not osp.exists(osp.join(REPO, name))]
    assert not missing, missing
    for name in names:
        if not name.startswith('mmsaal::'):
            name = osp.join(REPO, name)
        cfg = build(f'_base_ = [{name!r}]\n', tmp_path)
        assert 'model' in cfg or 'active_learning' in cfg, name


def config_blocks():
    blocks = []
    for path in DOCS:
        for language, code in prose_and_code(path)[1]:
            if language == 'python' and code.startswith('_base_'):
                blocks.append((osp.relpath(path, REPO), code))
    return blocks


def test_every_config_the_docs_show_builds(tmp_path):
    """The few-line configs of the docs, as a user copies them."""
    blocks = config_blocks()
    assert len(blocks) >= 6
    for where, code in blocks:
        try:
            cfg = build(code, tmp_path)
        except Exception as err:  # noqa: BLE001  (name the doc)
            raise AssertionError(f'{where}: {code}\n{err}') from err
        assert 'active_learning' in cfg, where


def documented_fields():
    rows = [line for line in open(FIELDS_DOC, encoding='utf-8')
            if line.startswith('| `')]
    return {name for row in rows
            for name in re.findall(r'`(\w+)`', row.split('|')[1])}


@pytest.mark.parametrize('owner', [
    'mmsaal.rounds.ActiveLearningSettings',
    'mmsaal.pool_samplers.SAALSampler',
    'mmsaal.oracles.LabelStudioOracle',
])
def test_every_field_is_documented(owner):
    import importlib
    module, _, name = owner.rpartition('.')
    cls = getattr(importlib.import_module(module), name)
    fields = [p.name for p in inspect.signature(cls).parameters.values()
              if p.kind is p.KEYWORD_ONLY or (
                  p.kind is p.POSITIONAL_OR_KEYWORD
                  and p.default is not p.empty)]
    fields = [f for f in fields if f != 'pool_dataset']
    assert fields
    missing = sorted(set(fields) - documented_fields())
    assert not missing, f'{name}: {missing} are not in {FIELDS_DOC}'
