package cmd

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

var (
	metav1GetOptions    = metav1.GetOptions{}
	metav1DeleteOptions = metav1.DeleteOptions{}
	metav1UpdateOptions = metav1.UpdateOptions{}
	metav1ListOptions   = metav1.ListOptions{}
)
