"""batscope.app"""
