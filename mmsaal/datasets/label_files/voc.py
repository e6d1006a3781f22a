# Copyright (c) mmsaal contributors. All rights reserved.
"""The boxes of ``PoolVOCDataset``: one ``Annotations/<id>.xml`` an image.
"""
import os.path as osp
import xml.etree.ElementTree as ET
from typing import List, Sequence, Tuple
from xml.sax.saxutils import escape

from mmsaal.utils import WorkDirError, remove_temporaries
from mmsaal.utils.images import image_size
from . import base
from .base import LabelFiles, Written

#: ``(class name, (xmin, ymin, xmax, ymax))`` in VOC's pixel numbers.
VOCObject = Tuple[str, Tuple[int, int, int, int]]


def voc_box(bbox: Sequence[float]) -> Tuple[int, int, int, int]:
    """A COCO ``[x, y, w, h]`` box (pixel edges from 0) in VOC's numbers:
    the first and last pixel it covers, counted from 1. mmdet reads them
    back (less 1) as ``[x, y, x + w - 1, y + h - 1]``, as it reads every
    VOC file; the edges are rounded to whole pixels."""
    x, y, w, h = bbox
    xmin, ymin = round(x) + 1, round(y) + 1
    return (xmin, ymin, max(round(x + w), xmin), max(round(y + h), ymin))


def voc_xml(file_name: str, width: int, height: int,
            objects: Sequence[VOCObject], folder: str = '') -> str:
    """A VOC annotation file: the image's size and its objects."""
    parts = ['<annotation>', f'  <folder>{escape(folder)}</folder>',
             f'  <filename>{escape(file_name)}</filename>',
             f'  <size><width>{int(width)}</width><height>{int(height)}'
             '</height><depth>3</depth></size>', '  <segmented>0</segmented>']
    for name, (x1, y1, x2, y2) in objects:
        parts += [
            '  <object>', f'    <name>{escape(name)}</name>',
            '    <pose>Unspecified</pose>', '    <truncated>0</truncated>',
            '    <difficult>0</difficult>',
            f'    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>'
            f'<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>', '  </object>']
    parts.append('</annotation>')
    return '\n'.join(parts) + '\n'


def voc_objects(path: str) -> List[VOCObject]:
    """The objects of a VOC file, sorted (None when it does not parse)."""
    try:
        root = ET.parse(path).getroot()
        return sorted(
            (obj.findtext('name'), tuple(
                int(float(obj.find('bndbox').findtext(k)))
                for k in ('xmin', 'ymin', 'xmax', 'ymax')))
            for obj in root.findall('object'))
    except (ET.ParseError, AttributeError, TypeError, ValueError):
        return None


class VOCLabelFiles(LabelFiles):
    """``{data_root}/{sub_data_root}/Annotations/<id>.xml`` of each queried
    image (``<id>``: its file name's stem, as the image list names it),
    one file an image; one that is there already is kept as
    ``<id>.xml.round_XX.bak`` before it is replaced."""

    @property
    def folder(self) -> str:
        prefix = self.cfg.get('data_prefix') or {}
        return osp.join(self.cfg.get('data_root') or '',
                        prefix.get('sub_data_root', ''),
                        self.cfg.get('ann_subdir', 'Annotations'))

    def write_boxes(self, checked, images: List[int], replace: bool,
                    round_idx: int) -> Written:
        folder = self.folder
        if not osp.isdir(folder):
            raise WorkDirError(
                f'the VOC annotation folder {folder} does not exist: make '
                f'it (the pool dataset\'s data_root, sub_data_root and '
                f'Annotations), then import again. Nothing was written.')
        remove_temporaries(folder)
        planned, replaced, objects = [], [], 0
        for label_id in images:
            queried = checked.matched[label_id]
            name = osp.basename(queried['file_name'])
            path = osp.join(folder, osp.splitext(name)[0] + '.xml')
            boxes = sorted(
                (checked.category[ann['category_id']], voc_box(ann['bbox']))
                for ann in checked.annotations.get(label_id, ()))
            if osp.exists(path):
                if voc_objects(path) == boxes:
                    continue
                if not replace:
                    raise WorkDirError(
                        f'{name} is labeled already ({path} exists): pass '
                        f'--replace to write its labels again (the file '
                        f'is kept as a .bak). Nothing was written.')
                replaced.append(queried['file_name'])
            width, height = queried.get('width'), queried.get('height')
            if not (width and height):
                width, height = image_size(queried['path'])
            planned.append((path, voc_xml(name, width, height, boxes)))
            objects += len(boxes)
        backups: List[str] = []
        for path, text in planned:
            base.write_label_file(text.encode('utf-8'), path, round_idx,
                                  backups)
        return Written(len(planned), objects, replaced, backups, folder)
