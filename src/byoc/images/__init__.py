"""Container image references: parsing URIs (`ref`) and resolving them in ECR (`ecr`)."""
