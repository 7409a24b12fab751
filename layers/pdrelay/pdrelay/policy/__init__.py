"""Where an alert goes and whether it may page now: routes, rules, maintenance windows, storm control."""
