# Copyright (c) mmsaal contributors. All rights reserved.
"""Plot learning curves (metric vs labeled fraction) of active-learning
runs: one line per strategy, mean and spread over seeds, to PNG and CSV.

Example::

    python tools/analysis_tools/plot_al_curves.py work_dirs/saal_s0 work_dirs/random_s0 --out curves.png
"""
import argparse
import os.path as osp

from mmsaal.analysis import (load_curve, plot_curves, summarize_curves,
                             write_curves_csv)
from mmsaal.analysis.curves import format_summary


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+', help='finished work dirs')
    parser.add_argument('--out', default='al_curves.png',
                        help='PNG path; the CSV goes beside it')
    return parser.parse_args()


def main():
    args = parse_args()
    curves = [load_curve(w) for w in args.work_dirs]
    plot_curves(curves, args.out)
    csv_path = osp.splitext(args.out)[0] + '.csv'
    write_curves_csv(curves, csv_path)
    print(format_summary(summarize_curves(curves), curves[0]['metric_name']))
    print(f'wrote {args.out} and {csv_path}')


if __name__ == '__main__':
    main()
