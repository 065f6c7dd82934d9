include $(sort $(wildcard $(BR2_EXTERNAL_PARMOD_PATH)/package/*/*.mk))
