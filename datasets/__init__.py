"""batscope.datasets"""
