"""pdrelay on one machine: moto in server mode, the real handlers, and a PagerDuty emulator.

Imports moto (and starts threads) only when used, never inside Lambda.
"""
