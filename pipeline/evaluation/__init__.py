"""Offline evaluation of logged traffic: click logs, replay, prequential metrics, reports."""
