"""Local stand-ins for SageMaker's built-in algorithm containers: scripts run as jobs, never imported by forgeline."""
