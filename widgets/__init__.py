"""batscope.widgets"""
