"""The kubelet stand-in's parts; e2e/k8s/kubelet.py is the program that puts them together."""
